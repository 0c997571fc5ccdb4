"""The report page: one self-contained HTML file (jinja2, autoescaped), rendered by :mod:`evalkit.report.render`.

This ``__init__`` imports nothing, so the capability views the page gathers (``bars.view``,
``judges.view`` ...) can import the report's formatting helpers without a cycle.
"""
