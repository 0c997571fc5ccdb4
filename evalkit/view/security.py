"""What keeps the viewer safe: who may ask, which writes count, and what a page may do.

* **Host**: on a loopback address only ``Host: 127.0.0.1|localhost|[::1]`` is answered,
  so a web page elsewhere cannot reach the server through a rebinding DNS name.
* **Access token**: on any other address every request needs the token printed at
  start (``?token=`` once, which sets an ``HttpOnly`` cookie, or ``Authorization:
  Bearer``); without it: 403.
* **CSRF**: each browser gets a random session cookie (``SameSite=Strict``); a write
  (any method but GET/HEAD) must carry ``X-CSRF-Token``, the HMAC of that session under
  the server's secret, which only the server's own pages hold; a write whose ``Origin``
  is another site is refused too. ``--read-only`` refuses every write.
* **Headers**: a Content-Security-Policy allowing only this server's own script and
  style (no inline script, no inline event handler, no other host), ``nosniff``, no
  framing, no referrer, no caching.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass, field
from urllib.parse import urlencode, urlsplit

from starlette.middleware.base import BaseHTTPMiddleware, RequestResponseEndpoint
from starlette.requests import Request
from starlette.responses import PlainTextResponse, RedirectResponse, Response

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
