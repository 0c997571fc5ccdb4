"""Render a run as a self-contained HTML report (jinja2, autoescaped)."""

from evalkit.report.render import render_report

__all__ = ["render_report"]
