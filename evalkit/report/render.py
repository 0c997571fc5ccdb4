"""Build the report's template context from a RunResult and render it.

Every string from a model or a dataset reaches the page through jinja2's autoescape,
never through ``|safe``.
"""

from __future__ import annotations

from typing import Any

import jinja2

from evalkit.results import RunResult

_ENV = jinja2.Environment(
    loader=jinja2.PackageLoader("evalkit.report", "templates"),
    autoescape=jinja2.select_autoescape(["html", "j2"], default=True),
    undefined=jinja2.StrictUndefined,
)

MAX_FAILURES_PER_CANDIDATE = 50


def report_context(run: RunResult) -> dict[str, Any]:
    """Return the template context: the metrics table and the failure cases."""
    metrics: list[str] = []
    for candidate in run.candidates:
        for name in candidate.metric_names():
            if name not in metrics:
                metrics.append(name)
    rows = [
        {"name": c.name, "status": c.status, "message": c.message, "metrics": c.metrics(),
         "items": len(c.items), "seconds": c.seconds}
        for c in run.candidates
    ]
    failures = []
    for candidate in run.candidates:
        failed = [i for i in candidate.items if any(not s.passed for s in i.scores.values())]
        for item in failed[:MAX_FAILURES_PER_CANDIDATE]:
            failures.append({
                "candidate": candidate.name,
                "item_id": item.item_id,
                "expected": item.expected,
                "prediction": item.prediction,
                "reasons": [f"{n}: {s.reason}" for n, s in item.scores.items() if not s.passed and s.reason],
            })
    return {"run": run, "metrics": metrics, "rows": rows, "failures": failures}


def render_report(run: RunResult) -> str:
    """Render the run's HTML report as one self-contained string."""
    return _ENV.get_template("report.html.j2").render(**report_context(run))
