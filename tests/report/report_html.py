"""Helpers that read a rendered report the way a browser's tokenizer would."""

from __future__ import annotations

import re


def script_elements(html: str) -> list[tuple[str, str]]:
    """Return (opening tag, content) of every <script> element in ``html``."""
    return re.findall(r"(<script\b[^>]*>)(.*?)</script>", html, flags=re.DOTALL | re.IGNORECASE)
