"""A ``serve: true`` server dies with evalkit (SIGKILL, SIGTERM, Ctrl-C), and readiness proves it is ours.

The fast tests launch the stand-in server (``tests/stand_in_vllm``: vLLM's command line
answered by the scripted server, with a child process as vLLM's engine core) through
the real ``serve_vllm`` and process guard, and read the process table with psutil.
One slow test does the same with the real vLLM server.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import psutil
import pytest
from scripted_server import ScriptedServer

from evalkit.models.openai_server import is_our_server, stop_all_servers

TESTS = Path(__file__).resolve().parents[1]
REPO = TESTS.parent
STAND_IN = TESTS / "stand_in_vllm"

SERVING_CHILD = textwrap.dedent("""
    import sys, time
    from pathlib import Path
    from evalkit.models.openai_server import serve_vllm

    with serve_vllm(Path(sys.argv[1]), "base", timeout_s=float(sys.argv[2]), kv_cache_gib=1,
                    extra_args=sys.argv[3:]) as server:
        print("ready", server.process.pid, flush=True)
        time.sleep(900)
""")


def stand_in_env(**extra: str) -> dict[str, str]:
    """The environment of a process whose vLLM server is the stand-in."""
    env = dict(os.environ, **extra)
    env["PYTHONPATH"] = os.pathsep.join([str(STAND_IN), str(TESTS), str(REPO), env.get("PYTHONPATH", "")])
    return env


def descendants(pid: int) -> list[psutil.Process]:
    """Every live process below ``pid``."""
    try:
        return psutil.Process(pid).children(recursive=True)
    except psutil.NoSuchProcess:
        return []


def assert_all_gone(processes: list[psutil.Process], timeout: float = 40.0) -> None:
    """Wait for every process to end; fail naming any that outlives ``timeout``."""
    _, alive = psutil.wait_procs(processes, timeout=timeout)
    alive = [p for p in alive if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]
    for process in alive:
        process.kill()
    assert not alive, f"left running: {[(p.pid, p.cmdline()[:4]) for p in alive]}"


def default_sigint() -> None:
    """In the child, before exec: SIGINT as a user's shell gives it.

    A child inherits an ignored SIGINT, and Python then installs no KeyboardInterrupt
    handler: when something earlier in the test session left SIGINT ignored in pytest's
    process, the SIGINT cases sent their signal to a child that could not hear it.
    """
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def start_serving_child(model_dir: Path, tmp_path: Path, env: dict[str, str], timeout_s: float = 60,
                        extra: tuple[str, ...] = ()) -> tuple[subprocess.Popen[str], list[psutil.Process]]:
    script = tmp_path / "serving_child.py"
    script.write_text(SERVING_CHILD)
    child = subprocess.Popen([sys.executable, str(script), str(model_dir), str(timeout_s), *extra],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
                             preexec_fn=default_sigint)
    assert child.stdout is not None
    line = child.stdout.readline()
    assert line.startswith("ready"), child.communicate(timeout=30)[1][-3000:]
    tree = descendants(child.pid)
    return child, tree


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM, signal.SIGINT], ids=["SIGKILL", "SIGTERM", "SIGINT"])
def test_the_server_group_dies_with_evalkit(sig: int, tiny_model_dir: Path, tmp_path: Path) -> None:
    child, tree = start_serving_child(tiny_model_dir, tmp_path, stand_in_env())
    try:
        # The guard, the server, and the server's own child (the engine core's stand-in).
        assert len(tree) >= 3, [p.cmdline()[:4] for p in tree]
        assert any("evalkit.models.openai_server" in " ".join(p.cmdline()) for p in tree)
        os.kill(child.pid, sig)
        child.wait(timeout=60)
        assert_all_gone(tree)
    finally:
        if child.poll() is None:
            child.kill()
        child.communicate()


def test_readiness_refuses_a_foreign_server_on_the_port() -> None:
    key = "our-own-key-0123456789"
    with ScriptedServer({"base": {}}) as foreign:  # answers anyone
        port = int(foreign.url.rsplit(":", 1)[1])
        assert not is_our_server(port, key, "base")
    with ScriptedServer({"other": {}}, api_key=key) as keyed_other:  # our key, not our model
        assert not is_our_server(int(keyed_other.url.rsplit(":", 1)[1]), key, "base")
    with ScriptedServer({"base": {}}, api_key=key) as ours:
        port = int(ours.url.rsplit(":", 1)[1])
        assert is_our_server(port, key, "base")
        assert not is_our_server(port, "someone-elses-key", "base")


def test_the_api_key_stays_off_the_command_line(tiny_model_dir: Path, tmp_path: Path) -> None:
    child, tree = start_serving_child(tiny_model_dir, tmp_path, stand_in_env())
    try:
        server = next(p for p in tree if "api_server" in " ".join(p.cmdline()))
        key = server.environ().get("VLLM_API_KEY", "")
        assert len(key) >= 24
        assert all(key not in " ".join(p.cmdline()) for p in tree)
    finally:
        child.kill()
        child.communicate()
        assert_all_gone(tree)


def test_stop_all_servers_is_a_no_op_without_servers() -> None:
    stop_all_servers()  # registered at exit: must not fail when nothing runs


@pytest.mark.slow
@pytest.mark.vllm
def test_a_real_vllm_server_dies_with_a_sigkilled_evalkit(tiny_model_dir: Path, tmp_path: Path) -> None:
    from vllm_fixtures import tiny_vllm_models

    env = dict(os.environ, VLLM_CPU_KVCACHE_SPACE="1")
    child, tree = start_serving_child(tiny_vllm_models().base, tmp_path, env, timeout_s=420,
                                      extra=("--enforce-eager", "--max-model-len", "512"))
    try:
        assert any("vllm.entrypoints.openai.api_server" in " ".join(p.cmdline()) for p in tree)
        started = time.monotonic()
        os.kill(child.pid, signal.SIGKILL)
        child.wait(timeout=30)
        assert_all_gone(tree, timeout=60)
        assert time.monotonic() - started < 60
    finally:
        if child.poll() is None:
            child.kill()
        child.communicate()



RUN_CHILD = textwrap.dedent("""
    import sys
    from evalkit.api import run_suite

    run_suite(sys.argv[1], store=sys.argv[2], write=False)
    print("finished")
""")


def predictions(run: Any) -> dict[tuple[str, str], str]:
    return {(c.name, i.item_id): i.prediction for c in run.candidates for i in c.items}


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGINT], ids=["SIGKILL", "SIGINT"])
def test_killed_mid_generation_then_rerun_equals_an_uninterrupted_run(
        sig: int, make_suite: Any, tiny_model_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from test_resume import cached_count

    from evalkit.api import run_suite
    from evalkit.testing.tiny_model import CLASSIFIER_ITEMS

    items = [dict(row, input=f"{row['input']} (copy {n})") for n in range(4) for row in CLASSIFIER_ITEMS]
    candidate = {"name": "served", "model": str(tiny_model_dir), "backend": "openai_server",
                 "options": {"serve": True, "start_timeout_s": 60, "concurrency": 1}}
    suite = make_suite(items, candidates=[candidate], generation={"max_new_tokens": 4, "batch_size": 2})
    store = tmp_path / "killed.db"
    script = tmp_path / "run_child.py"
    script.write_text(RUN_CHILD)
    # Each completion takes 1 s: time to kill the run between stored chunks, with room for
    # a loaded machine to deliver the signal before the last items are answered (at 0.3 s
    # a loaded CI run finished all 12 before SIGINT took effect).
    env = stand_in_env(STAND_IN_DELAY_S="1.0")
    child = subprocess.Popen([sys.executable, str(script), str(suite), str(store)], env=env,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, preexec_fn=default_sigint)
    tree: list[psutil.Process] = []
    try:
        deadline = time.monotonic() + 120
        while cached_count(store) < 2:
            assert child.poll() is None, child.communicate()[1][-3000:]
            assert time.monotonic() < deadline, "the child stored nothing within 120 s"
            tree = descendants(child.pid) or tree
            time.sleep(0.05)
        tree = descendants(child.pid)
        assert any("api_server" in " ".join(p.cmdline()) for p in tree), "the run started its server"
        os.kill(child.pid, sig)
        child.wait(timeout=60)
    finally:
        if child.poll() is None:
            child.kill()
        child.communicate()
    assert_all_gone(tree)
    stored = cached_count(store)
    assert 2 <= stored < len(items)

    for name, value in stand_in_env().items():
        monkeypatch.setenv(name, value)  # the server the rerun starts is the stand-in too
    resumed = run_suite(suite, store=store, write=False)
    uninterrupted = run_suite(suite, store=tmp_path / "fresh.db", write=False)
    assert predictions(resumed) == predictions(uninterrupted)
    assert len(predictions(resumed)) == len(items)
    left = [p for p in descendants(os.getpid()) if "evalkit.models.openai_server" in " ".join(p.cmdline())]
    assert_all_gone(left, timeout=5)
