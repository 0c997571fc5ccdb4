"""The viewer on a socket: uvicorn serving :func:`evalkit.view.app.build_app`.

The socket is bound here, before uvicorn starts, so ``--port 0`` (any free port) still
gives a URL to print, and a port in use is one clear error.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

from evalkit.errors import ConfigError
from evalkit.view.app import ViewConfig, build_app


def bind(host: str, port: int) -> socket.socket:
    """Return a listening TCP socket on ``host:port`` (port 0: any free port).

    Raises:
        ConfigError: the address cannot be bound (in use, not this machine's, no permission).
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
        sock.listen(128)
    except OSError as exc:
        sock.close()
        raise ConfigError(f"cannot listen on {host}:{port} ({exc.strerror or exc}); "
                          "pick another --port (0: any free one) or --host") from None
    return sock


def url_of(sock: socket.socket, token: str | None) -> str:
    """Return the URL a browser opens for the server on ``sock`` (with the access token when one is needed)."""
    host, port = sock.getsockname()[:2]
    shown = f"[{host}]" if ":" in host else host
    if host in ("0.0.0.0", "::"):
        shown = "127.0.0.1" if host == "0.0.0.0" else "[::1]"
    return f"http://{shown}:{port}/" + (f"?token={token}" if token else "")


def make_server(config: ViewConfig) -> object:
    """Return the uvicorn server of the viewer's application, built (and warmed up) now.

    Raises:
        StoreError: the store cannot be opened.
    """
    import uvicorn

    return uvicorn.Server(uvicorn.Config(build_app(config), log_level="warning", access_log=False,
                                         server_header=False, lifespan="off"))


def serve(server: object, sock: socket.socket) -> None:
    """Serve on ``sock`` until interrupted (Ctrl-C)."""
    server.run(sockets=[sock])  # type: ignore[attr-defined]


@contextmanager
def running(config: ViewConfig, host: str = "127.0.0.1", port: int = 0) -> Iterator[str]:
    """Serve in a thread for the ``with`` block and yield the URL (tests, benchmarks, screenshots).

    Raises:
        ConfigError: the address cannot be bound.
        RuntimeError: the server did not start within 30 s.
    """
    server = make_server(config)
    sock = bind(host, port)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)  # type: ignore[attr-defined]
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:  # type: ignore[attr-defined]
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the viewer did not start")
        time.sleep(0.02)
    try:
        yield url_of(sock, config.access.token)
    finally:
        server.should_exit = True  # type: ignore[attr-defined]
        thread.join(timeout=10)
        sock.close()
