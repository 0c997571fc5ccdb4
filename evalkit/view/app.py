"""The viewer's Starlette application (pages over the run store, the labels API), its server and commands.

Pages (every filter is a URL parameter, so a link reproduces the view):

* ``/``: the suites, each with its main metrics over its newest runs (inline SVG);
* ``/suites/{suite}``: its runs, newest first, paginated; pick two to diff;
* ``/runs/{run_id}``: the run's metrics per candidate and its verdict, from the store,
  and a link to its ``report.html`` when the run directory is there;
* ``/runs/{run_id}/items``: one candidate's items, filtered and paginated;
* ``/diff?a=RUN&ca=CANDIDATE&b=RUN&cb=CANDIDATE``: the paired comparison
  (:func:`evalkit.comparison.compare.compare_runs`) and the items side by side: by default those
  that flipped.

API: ``POST /api/labels`` (JSON ``run_id, candidate, item_id, criterion, value``) adds
a label; ``POST /api/labels/{label_id}/undo`` deletes one. Both need the page's CSRF
token (below).

Also here:

* What keeps the viewer safe: who may ask, which writes count, and what a page may do
  (:class:`GuardMiddleware`, :class:`Access`).
* The viewer on a socket: uvicorn serving :func:`build_app` (:func:`serve`, :func:`bind`).
* ``evalkit view`` (the review web app) and ``evalkit labels export`` (its labels, for calibration and DPO)
  (:func:`register`, :func:`handle_view`, :func:`handle_export`).
"""

from __future__ import annotations

import argparse
import getpass
import hashlib
import hmac
import secrets
import socket
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlencode, urlsplit

from jinja2 import Environment, FileSystemLoader, StrictUndefined
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.base import BaseHTTPMiddleware, RequestResponseEndpoint
from starlette.requests import Request
from starlette.responses import FileResponse, HTMLResponse, JSONResponse, PlainTextResponse, RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from evalkit.comparison.result import Comparison
from evalkit.errors import ConfigError, DataError, EvalkitError, StoreError
from evalkit.files.home import STORE_DEFAULT_HELP
from evalkit.judges.section import JudgesSection
from evalkit.store import RunStore
from evalkit.view import queries

# What keeps the viewer safe: who may ask, which writes count, and what a page may do.
#
# * **Host**: on a loopback address only ``Host: 127.0.0.1|localhost|[::1]`` is answered,
#   so a web page elsewhere cannot reach the server through a rebinding DNS name.
# * **Access token**: on any other address every request needs the token printed at
#   start (``?token=`` once, which sets an ``HttpOnly`` cookie, or ``Authorization:
#   Bearer``); without it: 403.
# * **CSRF**: each browser gets a random session cookie (``SameSite=Strict``); a write
#   (any method but GET/HEAD) must carry ``X-CSRF-Token``, the HMAC of that session under
#   the server's secret, which only the server's own pages hold; a write whose ``Origin``
#   is another site is refused too. ``--read-only`` refuses every write.
# * **Headers**: a Content-Security-Policy allowing only this server's own script and
#   style (no inline script, no inline event handler, no other host), ``nosniff``, no
#   framing, no referrer, no caching.

LOOPBACK_HOSTS = {"127.0.0.1", "localhost", "::1"}
SESSION_COOKIE = "evalkit_session"
TOKEN_COOKIE = "evalkit_token"
CSRF_HEADER = "x-csrf-token"
CONTENT_SECURITY_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; "
    "form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
)
_SAFE_METHODS = {"GET", "HEAD"}


def is_loopback(host: str) -> bool:
    """True when ``host`` is a loopback address or name (where no token is needed)."""
    return host in LOOPBACK_HOSTS or host.startswith("127.")


@dataclass
class Access:
    """The server's access rules (see the module docstring).

    Attributes:
        token: the access token every request needs, or None on loopback.
        read_only: refuse every write.
        secret: the key CSRF tokens are derived with (new at every start).
    """

    token: str | None
    read_only: bool = False
    secret: bytes = field(default_factory=lambda: secrets.token_bytes(32))

    @classmethod
    def for_host(cls, host: str, read_only: bool = False) -> Access:
        """Return the rules for a server bound to ``host``: a fresh token unless it is loopback."""
        return cls(None if is_loopback(host) else secrets.token_urlsafe(24), read_only)

    def csrf_token(self, session: str) -> str:
        """Return the CSRF token of one browser session."""
        return hmac.new(self.secret, session.encode(), hashlib.sha256).hexdigest()


def _host_name(request: Request) -> str:
    host = request.headers.get("host", "")
    return (urlsplit(f"//{host}").hostname or "").lower()


class GuardMiddleware(BaseHTTPMiddleware):
    """Apply :class:`Access` to every request and the safety headers to every response."""

    def __init__(self, app: object, access: Access) -> None:
        super().__init__(app)  # type: ignore[arg-type]
        self.access = access

    async def dispatch(self, request: Request, call_next: RequestResponseEndpoint) -> Response:
        """Refuse what the rules refuse (403), else answer with a session cookie and the headers."""
        refusal = self._refusal(request)
        if refusal is not None:
            return _with_headers(PlainTextResponse(refusal, status_code=403))
        token = self.access.token
        if token is not None and request.query_params.get("token") == token:
            # Trade the token in the URL for a cookie, and drop it from the address bar.
            kept = [(k, v) for k, v in request.query_params.multi_items() if k != "token"]
            url = request.url.path + ("?" + urlencode(kept) if kept else "")
            redirect = RedirectResponse(url, status_code=303)
            redirect.set_cookie(TOKEN_COOKIE, token, httponly=True, samesite="strict")
            return _with_headers(redirect)
        session = request.cookies.get(SESSION_COOKIE)
        fresh = not session or len(session) > 100
        if fresh:
            session = secrets.token_urlsafe(24)
        assert session is not None
        request.state.csrf = self.access.csrf_token(session)
        request.state.read_only = self.access.read_only
        response = await call_next(request)
        if fresh:
            response.set_cookie(SESSION_COOKIE, session, httponly=True, samesite="strict")
        return _with_headers(response, report=request.url.path.endswith("/report.html"))

    def _refusal(self, request: Request) -> str | None:
        """Return why the request is refused, or None."""
        token = self.access.token
        if token is None and not is_loopback(_host_name(request)):
            return "forbidden: this server answers only on its loopback address\n"
        if token is not None:
            given = (request.cookies.get(TOKEN_COOKIE) or request.query_params.get("token")
                     or request.headers.get("authorization", "").removeprefix("Bearer "))
            if not hmac.compare_digest(given.encode(), token.encode()):
                return "forbidden: this server needs the access token it printed when it started (?token=...)\n"
        if request.method in _SAFE_METHODS:
            return None
        if self.access.read_only:
            return "forbidden: this viewer is read-only (--read-only); labels cannot be written\n"
        origin = request.headers.get("origin")
        if origin and origin != "null" and urlsplit(origin).netloc != request.headers.get("host"):
            return "forbidden: a write from another site\n"
        session = request.cookies.get(SESSION_COOKIE, "")
        given = request.headers.get(CSRF_HEADER, "")
        if not session or not hmac.compare_digest(given.encode(), self.access.csrf_token(session).encode()):
            return "forbidden: missing or wrong CSRF token; reload the page\n"
        return None


def _with_headers(response: Response, report: bool = False) -> Response:
    """Add the safety headers (a stored report keeps its own Content-Security-Policy, which is as strict)."""
    if not report:
        response.headers["content-security-policy"] = CONTENT_SECURITY_POLICY
    response.headers["x-content-type-options"] = "nosniff"
    response.headers["x-frame-options"] = "DENY"
    response.headers["referrer-policy"] = "no-referrer"
    response.headers["cache-control"] = "no-store"
    return response


# The viewer's Starlette application: pages over the run store, and the labels API.

HERE = Path(__file__).parent
T = TypeVar("T")
_CACHED_COMPARISONS = 8  # paired comparisons kept (runs never change once stored)
_MAX_PAGE = 1_000_000
_ITEM_SETS = ("flipped", "pass_to_fail", "fail_to_pass", "all")


@dataclass
class ViewConfig:
    """What one viewer serves.

    Attributes:
        store_path: the run store.
        access: who may ask and whether writes are allowed.
        author: the name labels are written under.
        rubrics: rubric name -> its criteria, offered for scoring (from ``--rubric``).
    """

    store_path: Path
    access: Access
    author: str
    rubrics: dict[str, list[str]] = field(default_factory=dict)


class Viewer:
    """The application's state: one store connection per worker thread, and recent comparisons."""

    def __init__(self, config: ViewConfig) -> None:
        self.config = config
        self._local = threading.local()
        self._lock = threading.Lock()
        self._comparisons: OrderedDict[tuple[str, str, str, str], Comparison] = OrderedDict()
        self.env = Environment(loader=FileSystemLoader(HERE / "templates"), autoescape=True,
                               undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True)
        # Open once here: the schema is brought up to date (the labels table) before any page.
        self.store().close()
        self._local.store = None

    def warm_up(self) -> None:
        """Compile every template and import what the pages use (numpy, scipy's tests), at start.

        A server pays its imports once when it starts, not on the first person's first diff.
        """
        for name in self.env.list_templates():
            self.env.get_template(name)
        from scipy.special import bdtr, ndtri  # noqa: F401
        from scipy.stats import wilcoxon  # noqa: F401

        import evalkit.bars.verdict
        import evalkit.comparison.compare
        import evalkit.report.charts  # noqa: F401

    def store(self) -> RunStore:
        """Return this thread's open store."""
        store = getattr(self._local, "store", None)
        if store is None:
            store = RunStore(self.config.store_path, read_only=self.config.access.read_only)
            self._local.store = store
        return store

    def read(self, work: Callable[[Any], T]) -> T:
        """Run ``work(conn)`` in one read transaction."""
        return self.store().read(work)

    def comparison(self, a: str, ca: str, b: str, cb: str) -> Comparison:
        """Return the paired comparison of candidate ``cb`` of run ``b`` against ``ca`` of run ``a`` (cached)."""
        from evalkit.comparison.compare import compare_runs

        key = (a, ca, b, cb)
        with self._lock:
            if key in self._comparisons:
                self._comparisons.move_to_end(key)
                return self._comparisons[key]
        if a == b:  # two candidates of one run (or one with itself): read the run once
            base = other = self.read(lambda c: queries.light_run(c, a, list(dict.fromkeys([ca, cb]))))
        else:
            base = self.read(lambda c: queries.light_run(c, a, [ca]))
            other = self.read(lambda c: queries.light_run(c, b, [cb]))
        comparison = compare_runs(base, other, baseline=ca, candidate=cb, policy=self.store().thresholds(b))
        with self._lock:
            self._comparisons[key] = comparison
            while len(self._comparisons) > _CACHED_COMPARISONS:
                self._comparisons.popitem(last=False)
        return comparison

    def render(self, request: Request, template: str, status: int = 200, **context: Any) -> HTMLResponse:
        """Render a page with the session's CSRF token and the viewer's mode."""
        page = self.env.get_template(template).render(
            csrf=request.state.csrf, read_only=request.state.read_only, author=self.config.author,
            url_with=lambda **changes: _url_with(request, changes), **context)
        return HTMLResponse(page, status_code=status)


def _url_with(request: Request, changes: dict[str, Any]) -> str:
    """Return this page's URL with some parameters changed (None removes one)."""
    params = dict(request.query_params)
    for key, value in changes.items():
        if value is None or value == "":
            params.pop(key, None)
        else:
            params[key] = str(value)
    return request.url.path + ("?" + urlencode(params) if params else "")


def _page(request: Request) -> int:
    try:
        return max(0, min(_MAX_PAGE, int(request.query_params.get("page", "0"))))
    except ValueError:
        return 0


def _item_filter(request: Request, only_ids: list[str] | None = None) -> queries.ItemFilter:
    q = request.query_params
    slice_field, _, slice_value = q.get("slice", "").partition(":")
    where = q.get("where", "either")
    return queries.ItemFilter(metric=q.get("metric", ""), failing=q.get("failing") == "1", pattern=q.get("q", ""),
                              where=where if where in ("input", "output", "either") else "either",
                              slice_field=slice_field, slice_value=slice_value, only_ids=only_ids)


def _rubric_criteria(viewer: Viewer, runs: list[Any]) -> dict[str, list[str]]:
    """Rubric -> criteria offered for scoring: ``--rubric`` files, and the rubrics the runs' judges used."""
    found = {name: list(criteria) for name, criteria in viewer.config.rubrics.items()}
    for run in runs:
        try:
            judges: JudgesSection = (run.section("judges") if run is not None else None) or {}
        except DataError:
            continue  # a damaged judges section offers no criteria; the page itself still shows the run
        for rubric, entry in judges.items():
            for criteria in entry.per_candidate.values():
                found.setdefault(rubric, [])
                found[rubric] += [c for c in criteria if c not in found[rubric]]
    return found


def build_app(config: ViewConfig, warm: bool = True) -> Starlette:
    """Return the viewer's application for ``config`` (``warm``: import and compile everything first).

    Raises:
        StoreError: the store cannot be opened.
    """
    viewer = Viewer(config)
    if warm:
        viewer.warm_up()

    def index(request: Request) -> Response:
        def query(conn: Any) -> list[dict[str, Any]]:
            out = []
            for suite in queries.suites(conn):
                metrics = queries.main_metrics(conn, suite.suite)
                ids, series = queries.metric_trends(conn, suite.suite, metrics)
                out.append({"row": suite, "ids": ids, "series": series})
            return out

        return viewer.render(request, "index.html.j2", suites=_charted(viewer.read(query)))

    def suite_page(request: Request) -> Response:
        suite = request.path_params["suite"]
        page = _page(request)

        def query(conn: Any) -> dict[str, Any]:
            rows, total = queries.run_rows(conn, suite, page)
            metrics = queries.main_metrics(conn, suite)
            ids, series = queries.metric_trends(conn, suite, metrics)
            return {"rows": rows, "total": total, "metrics": metrics, "ids": ids, "series": series}

        found = viewer.read(query)
        if not found["total"]:
            return _not_found(viewer, request, f"no runs of suite '{suite}' in the store")
        charts = _charted([{"row": None, "ids": found["ids"], "series": found["series"]}])[0]["charts"]
        return viewer.render(request, "suite.html.j2", suite=suite, rows=found["rows"], total=found["total"],
                             metrics=found["metrics"], charts=charts, page=page, per_page=queries.PER_PAGE)

    def run_page(request: Request) -> Response:
        from evalkit.bars.verdict import run_verdict

        run_id = request.path_params["run_id"]
        run = viewer.read(lambda c: queries.run_header(c, run_id))
        if run is None:
            return _not_found(viewer, request, f"no run '{run_id}' in the store")
        metrics, table = viewer.read(lambda c: queries.run_metric_table(c, run_id))
        report = run.run_dir is not None and (run.run_dir / "report.html").is_file()
        return viewer.render(request, "run.html.j2", run=run, metrics=metrics, table=table,
                             verdict=run_verdict(run), report=report)

    def run_report(request: Request) -> Response:
        run = viewer.read(lambda c: queries.run_header(c, request.path_params["run_id"]))
        path = run.run_dir / "report.html" if run is not None and run.run_dir is not None else None
        if path is None or not path.is_file():
            return _not_found(viewer, request, "this run has no report.html on this machine")
        return FileResponse(path, media_type="text/html")

    def items_page(request: Request) -> Response:
        run_id = request.path_params["run_id"]
        run = viewer.read(lambda c: queries.run_header(c, run_id))
        if run is None:
            return _not_found(viewer, request, f"no run '{run_id}' in the store")
        names = [c.name for c in run.candidates if c.status == "ok"]
        candidate = request.query_params.get("candidate") or (names[-1] if names else "")
        if candidate not in names:
            return _bad(viewer, request, f"run {run_id} has no evaluated candidate '{candidate}'")
        where, page = _item_filter(request), _page(request)

        def query(conn: Any) -> dict[str, Any]:
            rows, total = queries.item_page(conn, run_id, candidate, None, where, page)
            found = queries.labels_for(conn, run_id, candidate, [r.item_id for r in rows])
            return {"rows": rows, "total": total, "labels": [found], "metrics": queries.item_metrics(
                conn, run_id, candidate), "fields": queries.item_fields(conn, run_id, candidate)}

        found = viewer.read(query)
        return viewer.render(request, "items.html.j2", run=run, names=names, candidate=candidate, where=where,
                             page=page, per_page=queries.PER_PAGE, sides=[(run_id, candidate)],
                             rubrics=_rubric_criteria(viewer, [run]), **found)

    def diff_page(request: Request) -> Response:
        q = request.query_params
        a = q.get("a", "")
        b = q.get("b", "") or a
        runs = [viewer.read(partial(queries.run_header, run_id=run_id)) for run_id in (a, b)]
        if runs[0] is None or runs[1] is None:
            return _not_found(viewer, request, f"no run '{a if runs[0] is None else b}' in the store")
        names_a = [c.name for c in runs[0].candidates if c.status == "ok"]
        names_b = [c.name for c in runs[1].candidates if c.status == "ok"]
        ca, cb = _default_pair(runs[0].baseline, names_a, names_b, a == b, q.get("ca", ""), q.get("cb", ""))
        if ca not in names_a or cb not in names_b:
            return _bad(viewer, request, f"pick candidates that were evaluated: run {a} has {', '.join(names_a)}; "
                                         f"run {b} has {', '.join(names_b)}")
        comparison = viewer.comparison(a, ca, b, cb).candidates[cb]
        chosen = q.get("items", "flipped")
        chosen = chosen if chosen in _ITEM_SETS else "flipped"
        metric = q.get("metric", "")
        only = None if chosen == "all" else _flipped(comparison.metrics.values(), metric, chosen)
        where, page = _item_filter(request, only), _page(request)

        def query(conn: Any) -> dict[str, Any]:
            rows, total = queries.item_page(conn, a, ca, (b, cb), where, page)
            ids = [r.item_id for r in rows]
            return {"rows": rows, "total": total,
                    "labels": [queries.labels_for(conn, a, ca, ids), queries.labels_for(conn, b, cb, ids)],
                    "fields": queries.item_fields(conn, a, ca), "metrics": queries.item_metrics(conn, a, ca)}

        found = viewer.read(query)
        return viewer.render(request, "diff.html.j2", a=runs[0], b=runs[1], ca=ca, cb=cb, names_a=names_a,
                             names_b=names_b, comparison=comparison, chosen=chosen, item_sets=_ITEM_SETS,
                             where=where, page=page, per_page=queries.PER_PAGE, sides=[(a, ca), (b, cb)],
                             rubrics=_rubric_criteria(viewer, runs), **found)

    async def add_label(request: Request) -> Response:
        try:
            body = await request.json()
        except ValueError:
            return JSONResponse({"error": "the body must be a JSON object"}, status_code=400)
        if not isinstance(body, dict):
            return JSONResponse({"error": "the body must be a JSON object"}, status_code=400)
        run_id, candidate, item_id, criterion = (str(body.get(k, "")) for k in
                                                 ("run_id", "candidate", "item_id", "criterion"))
        try:
            label = await _in_thread(lambda: viewer.store().write(lambda conn: queries.add_label(
                conn, run_id, candidate, item_id, criterion, body.get("value"), viewer.config.author)))
        except ConfigError as exc:
            return JSONResponse({"error": str(exc)}, status_code=400)
        return JSONResponse({"label": label.__dict__}, status_code=201)

    async def undo_label(request: Request) -> Response:
        label_id = int(request.path_params["label_id"])
        done = await _in_thread(lambda: viewer.store().write(
            lambda conn: queries.undo_label(conn, label_id, viewer.config.author)))
        return JSONResponse({"undone": done}, status_code=200 if done else 404)

    routes = [
        Route("/", index),
        Route("/suites/{suite}", suite_page),
        Route("/runs/{run_id}", run_page),
        Route("/runs/{run_id}/report.html", run_report),
        Route("/runs/{run_id}/items", items_page),
        Route("/diff", diff_page),
        Route("/favicon.ico", lambda request: Response(status_code=204)),  # no icon, and no 404 for it
        Route("/api/labels", add_label, methods=["POST"]),
        Route("/api/labels/{label_id:int}/undo", undo_label, methods=["POST"]),
        Mount("/static", StaticFiles(directory=HERE / "static"), name="static"),
    ]

    async def on_error(request: Request, exc: Exception) -> Response:
        if request.url.path.startswith("/api/"):
            return JSONResponse({"error": str(exc)}, status_code=400)
        return _bad(viewer, request, str(exc))

    return Starlette(routes=routes, middleware=[Middleware(GuardMiddleware, access=config.access)],
                     exception_handlers={EvalkitError: on_error})


async def _in_thread(work: Callable[[], T]) -> T:
    from starlette.concurrency import run_in_threadpool

    return await run_in_threadpool(work)


def _default_pair(baseline: str, names_a: list[str], names_b: list[str], same_run: bool,
                  ca: str, cb: str) -> tuple[str, str]:
    """Return the candidates a diff shows when the URL names none.

    Within a run, the baseline and the next candidate; across runs, the last candidate both evaluated.
    """
    if ca and cb:
        return ca, cb
    if same_run:
        others = [n for n in names_b if n != (ca or baseline)]
        return ca or baseline, cb or (others[0] if others else "")
    shared = [n for n in names_b if n in names_a]
    pick = cb or ca or (shared[-1] if shared else "")
    return ca or pick, cb or pick


def _flipped(metrics: Any, metric: str, chosen: str) -> list[str]:
    """Item ids that flipped (one way or either) on ``metric`` or any metric, without repeats."""
    ids: dict[str, None] = {}
    for m in metrics:
        if metric and m.metric != metric:
            continue
        if chosen in ("flipped", "pass_to_fail"):
            ids.update(dict.fromkeys(m.pass_to_fail))
        if chosen in ("flipped", "fail_to_pass"):
            ids.update(dict.fromkeys(m.fail_to_pass))
    return list(ids)


def _charted(entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Draw each entry's metric series as trend charts (the report's own chart code)."""
    from evalkit.report.charts import trend_chart

    for entry in entries:
        entry["charts"] = [trend_chart(metric, entry["ids"], series, percent=all(
            v is None or 0 <= v <= 1 for line in series.values() for v in line))
            for metric, series in entry["series"].items() if series]
    return entries


def _not_found(viewer: Viewer, request: Request, message: str) -> HTMLResponse:
    return viewer.render(request, "message.html.j2", status=404, title="Not found", message=message)


def _bad(viewer: Viewer, request: Request, message: str) -> HTMLResponse:
    return viewer.render(request, "message.html.j2", status=400, title="Cannot show this", message=message)


# The viewer on a socket: uvicorn serving :func:`evalkit.view.app.build_app`.
#
# The socket is bound here, before uvicorn starts, so ``--port 0`` (any free port) still
# gives a URL to print, and a port in use is one clear error.

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


# ``evalkit view`` (the review web app) and ``evalkit labels export`` (its labels, for calibration and DPO).
#
# Registered from :data:`evalkit.commands.COMMAND_MODULES`; imports nothing heavy until a
# command runs, so ``evalkit --help`` stays fast.

def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``view`` and ``labels`` subcommands."""
    view = subparsers.add_parser(
        "view", help="browse the run store in a local web app: diff runs with statistics, label items",
        description="Serve a web app over the run store: suites and their runs, a run's metrics and verdict, "
                    "a diff of two runs or candidates with paired statistics, items with filters, and human "
                    "labels. Binds loopback by default; another --host needs the token it prints.",
    )
    view.add_argument("--store", help=f"the run store (default: {STORE_DEFAULT_HELP})")
    view.add_argument("--host", default="127.0.0.1",
                      help="address to listen on (default: %(default)s; any other needs the printed token)")
    view.add_argument("--port", type=int, default=0, help="port (default: 0, any free port)")
    view.add_argument("--read-only", action="store_true", help="refuse every write (labels), for a shared store")
    view.add_argument("--author", default=None, help="name labels are written under (default: your user name)")
    view.add_argument("--rubric", action="append", default=[], metavar="FILE",
                      help="a rubric whose criteria can be scored 1..5 (repeatable); the runs' judges' "
                           "rubrics are offered too")
    view.set_defaults(handler=handle_view)

    labels = subparsers.add_parser(
        "labels", help="export the human labels made in `evalkit view`",
        description="Export the labels made in `evalkit view`: calibration (the labels file `evalkit rubric "
                    "calibrate` reads), dpo (the preference file `evalkit train --method dpo` reads) or jsonl "
                    "(every label, raw).",
    )
    actions = labels.add_subparsers(dest="labels_action", metavar="ACTION")
    actions.required = True
    export = actions.add_parser("export", help="write the labels to a file")
    export.add_argument("--store", help=f"the run store (default: {STORE_DEFAULT_HELP})")
    export.add_argument("--format", required=True, choices=("calibration", "dpo", "jsonl"), dest="fmt")
    export.add_argument("--out", required=True, metavar="FILE", help="the JSONL file to write")
    export.add_argument("--rubric", metavar="FILE", help="the rubric whose criteria were scored (calibration)")
    export.set_defaults(handler=handle_export)


def _store_path(value: str | None) -> Path:
    from evalkit.store import default_store_path

    return Path(value).expanduser() if value else default_store_path()


def handle_view(args: argparse.Namespace) -> int:
    """Open the store, bind, print the URL and serve until Ctrl-C."""
    from evalkit.judges.rubric import load_rubric

    if not 0 <= args.port <= 65535:
        raise ConfigError(f"--port must be 0..65535, got {args.port}")
    store = _store_path(args.store)
    if not store.is_file():
        raise StoreError(f"no run store at {store}; run a suite first or pass --store PATH")
    rubrics = {}
    for path in args.rubric:
        rubric = load_rubric(path)
        rubrics[rubric.name] = list(rubric.criterion_names)
    access = Access.for_host(args.host, read_only=args.read_only)
    config = ViewConfig(store_path=store, access=access, author=args.author or getpass.getuser(), rubrics=rubrics)
    server = make_server(config)  # opens the store and warms up before the URL is printed
    sock = bind(args.host, args.port)
    print(f"evalkit view: serving {store} at {url_of(sock, access.token)}", flush=True)
    if access.token:
        print(f"evalkit view: listening on {args.host}: every request needs the token above", flush=True)
    serve(server, sock)
    return 0


def handle_export(args: argparse.Namespace) -> int:
    """Write the labels in the chosen format; nothing is written when there is nothing to export."""
    from evalkit.files.home import json_text, write_text
    from evalkit.judges.rubric import load_rubric
    from evalkit.store import RunStore
    from evalkit.view.queries import export_records

    out = Path(args.out).expanduser()
    if out.is_dir():
        raise ConfigError(f"--out {out} is a directory; name the file to write")
    store = _store_path(args.store)
    if not store.is_file():
        raise StoreError(f"no run store at {store}; pass --store PATH")
    rubric = load_rubric(args.rubric) if args.rubric else None
    with RunStore(store, read_only=True) as opened:
        records = opened.read(lambda conn: export_records(conn, args.fmt, rubric))
    if not records:
        what = {"calibration": "outputs with every criterion of the rubric scored",
                "dpo": "items with one output labelled pass and another labelled fail", "jsonl": "labels"}[args.fmt]
        raise ConfigError(f"nothing to export from {store}: no {what}; label some in `evalkit view`")
    write_text(out, "".join(json_text(record) + "\n" for record in records))
    print(f"wrote {len(records)} {args.fmt} record{'s' if len(records) != 1 else ''} to {out}")
    return 0
