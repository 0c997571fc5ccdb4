"""Embed data in the report page so that no byte of it can end the element it sits in.

Model output and dataset text reach the page in two ways only: through jinja2's
autoescape (HTML text and attributes) and through :func:`json_for_script`, a JSON
document inside ``<script type="application/json">`` that the page's own script reads
with ``JSON.parse`` and shows with ``textContent``.
"""

from __future__ import annotations

import json
import re
from typing import Any

from markupsafe import Markup

# `<` and `>` could close the script element or open a comment; `&` could start an
# entity in some parsers; U+2028/2029 end a line in older JavaScript; lone surrogates
# cannot be written as UTF-8 at all.
_UNSAFE_IN_SCRIPT = re.compile("[<>&\u2028\u2029\ud800-\udfff]")


def _escape_char(match: re.Match[str]) -> str:
    return f"\\u{ord(match.group()):04x}"


def json_for_script(value: Any) -> Markup:
    """Return ``value`` as JSON text that is safe inside a ``<script>`` element.

    Args:
        value: a JSON-ready value (dicts, lists, strings, numbers, booleans, None).

    Returns:
        Markup to place between ``<script type="application/json">`` and ``</script>``.
    """
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    return Markup(_UNSAFE_IN_SCRIPT.sub(_escape_char, text))


def printable_text(html: str) -> str:
    """Return ``html`` with characters UTF-8 cannot encode (lone surrogates) replaced."""
    try:
        html.encode("utf-8")
    except UnicodeEncodeError:
        return html.encode("utf-8", "replace").decode("utf-8")
    return html
