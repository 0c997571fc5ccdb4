"""Where report tests put artifacts, and reading a rendered report as a browser's tokenizer would."""

from __future__ import annotations

import re
from pathlib import Path

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"


def script_elements(html: str) -> list[tuple[str, str]]:
    """Return (opening tag, content) of every <script> element in ``html``."""
    return re.findall(r"(<script\b[^>]*>)(.*?)</script>", html, flags=re.DOTALL | re.IGNORECASE)
