"""Where API keys may come from and where they may go.

Three rules, shared by the judges (``judges[].judge``) and the ``openai_server``
backend (``candidates[].options``):

* a suite names the *variable* holding a key, never the key; the variable must be the
  provider's own (``OPENAI_API_KEY``, ``ANTHROPIC_API_KEY``) or end in ``_API_KEY``, so
  a shared suite file cannot make evalkit send ``AWS_SECRET_ACCESS_KEY`` or ``HOME``
  to an endpoint of its choosing;
* a key is sent only over https, or over plain http to a loopback host
  (``127.0.0.1``, ``::1``, ``localhost``): anything else is refused before a request
  leaves, naming the field;
* a key lives only inside the SDK client: it is never part of a cache key, a stored
  row, a run directory, a report, a log line or an error message (:func:`redact`
  scrubs any text that might quote one).

Standard library only: :mod:`evalkit.suite.config` and the judges' spec import it.
"""

from __future__ import annotations

import ipaddress
import os
import re
from urllib.parse import urlsplit

from evalkit.errors import ConfigError

KEY_ENV_PATTERN = re.compile(r"[A-Z][A-Z0-9_]*_API_KEY")
"""Names a suite may give as ``api_key_env``: ``OPENAI_API_KEY``, ``MY_GATEWAY_API_KEY``..."""
PLACEHOLDER_KEY = "EMPTY"
"""Sent when no key is set: the SDKs insist on a non-empty one; a local server needs none."""
_LOOPBACK_NAMES = {"localhost", "localhost.localdomain", "ip6-localhost", "ip6-loopback"}


def check_key_env_name(name: str) -> str:
    """Return ``name`` when a suite may name it as the key variable.

    Raises:
        ValueError: the name is not ``*_API_KEY``; the message says what is allowed.
    """
    if not KEY_ENV_PATTERN.fullmatch(name):
        raise ValueError(
            f"'{name}' is not an API key variable: use the provider's own (OPENAI_API_KEY, "
            "ANTHROPIC_API_KEY) or a name ending in _API_KEY (upper case)"
        )
    return name


def is_loopback_host(host: str) -> bool:
    """Whether ``host`` is this machine (127.0.0.0/8, ::1, localhost)."""
    host = host.strip("[]").lower()
    if host in _LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_base_url(url: str) -> str:
    """Return ``url`` when it is an http(s) URL with a host.

    Raises:
        ValueError: another scheme, or no host.
    """
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"'{url}' is not an http(s) URL with a host, e.g. https://api.example.com/v1")
    return url


def sends_in_clear(url: str) -> bool:
    """Whether a key sent to ``url`` would cross a network unencrypted (http, not loopback)."""
    parts = urlsplit(url)
    return parts.scheme == "http" and not is_loopback_host(parts.hostname or "")


def read_api_key(env_name: str, base_url: str | None, where: str) -> str | None:
    """Return the key in ``env_name`` for requests to ``base_url`` (None when it is unset).

    Args:
        env_name: the variable (already checked by :func:`check_key_env_name`).
        base_url: the endpoint; None means the provider's own (https).
        where: the field that names the endpoint, for the message (``judges[0].judge.base_url``).

    Raises:
        ConfigError: the key is set and ``base_url`` is plain http to another host.
    """
    value = os.environ.get(env_name) or None
    if value is not None and base_url is not None and sends_in_clear(base_url):
        host = urlsplit(base_url).hostname
        raise ConfigError(
            f"{where}: refusing to send the key in {env_name} over plain http to {host}; "
            "use an https:// base_url (or a loopback host such as 127.0.0.1)"
        )
    return value


def redact(text: str, env_names: tuple[str, ...] = ()) -> str:
    """Return ``text`` with the value of every key variable replaced by ``[redacted]``.

    Scrubs the named variables and every ``*_API_KEY`` in the environment: a server's
    error message may echo the header it was sent.
    """
    names = set(env_names) | {name for name in os.environ if KEY_ENV_PATTERN.fullmatch(name)}
    for name in names:
        value = os.environ.get(name, "")
        if len(value) >= 8:  # a short value would redact ordinary words
            text = text.replace(value, "[redacted]")
    return text
