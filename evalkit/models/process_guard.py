"""Run a server so that it dies with the evalkit process that started it, however that ends.

``python -m evalkit.models.process_guard OWNER_PID -- COMMAND...`` is what
:func:`start_guarded` launches, in a session (process group) of its own. The guard:

* starts ``COMMAND`` as its child, in its own process group, so the server and every
  process the server spawns (vLLM's engine core) share one group;
* asks the kernel for SIGTERM when its parent dies (``prctl(PR_SET_PDEATHSIG)`` on
  Linux) and, on every system, checks twice a second that ``OWNER_PID`` is still its
  parent: a SIGKILL of evalkit, which runs no handler, still stops the server;
* on SIGTERM, SIGINT or SIGHUP, or when the owner is gone, sends SIGTERM to the whole
  group, waits for the server to exit, then SIGKILLs whatever of the group remains.

Why a guard rather than ``preexec_fn``: the parent-death signal of a process fires
when the *thread* that forked it exits, and ``preexec_fn`` is unsafe beside threads;
the guard asks for it after ``exec``, in a process of one thread, and compares the
parent pid after asking (closing the race with an owner that died first). And the
server's own children never carry a parent-death signal: only a group kill reaches them.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import subprocess
import sys
from collections.abc import Sequence
from types import FrameType

PR_SET_PDEATHSIG = 1
POLL_S = 0.5
GRACE_S = 20.0


def set_parent_death_signal(sig: int = signal.SIGTERM) -> bool:
    """Ask the kernel to send ``sig`` to this process when its parent dies (Linux only).

    Returns:
        True when the request was accepted (False elsewhere, or when libc refuses).
    """
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return bool(libc.prctl(PR_SET_PDEATHSIG, int(sig), 0, 0, 0) == 0)
    except (OSError, AttributeError):
        return False


def stop_group(pgid: int, process: subprocess.Popen[bytes] | None, grace_s: float = GRACE_S) -> None:
    """SIGTERM the group, wait up to ``grace_s`` for ``process``, then SIGKILL the group."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signal.SIGTERM)
    if process is not None:
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=grace_s)
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signal.SIGKILL)


def start_guarded(command: Sequence[str], **popen: object) -> subprocess.Popen[bytes]:
    """Start ``command`` under a guard; return the guard's process (it leads the group).

    Stop it with :func:`stop_group` on ``process.pid``: the guard, the server and the
    server's children all die.
    """
    guard = [sys.executable, "-m", "evalkit.models.process_guard", str(os.getpid()), "--", *command]
    return subprocess.Popen(guard, start_new_session=True, **popen)  # type: ignore[call-overload,no-any-return]


def main(argv: Sequence[str]) -> int:
    """Run the guard (see the module docstring); returns the server's exit status."""
    if len(argv) < 3 or argv[1] != "--":
        print("usage: python -m evalkit.models.process_guard OWNER_PID -- COMMAND...", file=sys.stderr)
        return 2
    owner = int(argv[0])
    set_parent_death_signal(signal.SIGTERM)
    if os.getppid() != owner:
        return 1  # the owner died before the guard could watch it: start nothing
    stopping = False

    def on_signal(signum: int, frame: FrameType | None) -> None:
        nonlocal stopping
        stopping = True

    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, on_signal)
    # The server joins the guard's group (the guard leads it), so one killpg reaches all.
    server = subprocess.Popen(list(argv[2:]))
    while not stopping and server.poll() is None and os.getppid() == owner:
        with contextlib.suppress(subprocess.TimeoutExpired):
            server.wait(timeout=POLL_S)
    # Do not take our own SIGTERM while stopping the group.
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    if server.poll() is not None and not stopping and os.getppid() == owner:
        # The server ended on its own: stop what it left behind, report its status.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(os.getpgrp(), signal.SIGTERM)
        return int(server.returncode)
    stop_group(os.getpgrp(), server)  # its final SIGKILL ends the guard too
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
