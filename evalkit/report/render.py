"""Turn a RunResult into one self-contained HTML report.

Each section has one context function (in its own module here) and one template under
``templates/sections/``; a section appears only when the run has its data. Every string
from a model or a dataset reaches the page through jinja2's autoescape or through
:func:`evalkit.report.render.json_for_script`, never through ``|safe``. The page's only
script is inlined and allowed by its hash in the Content-Security-Policy, which forbids
every network request, so the file works offline and an injected script could not run
even if escaping failed. :func:`json_for_script` (at the end) embeds data so that no byte
of it can end the element it sits in.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
from collections.abc import Mapping, Sequence
from functools import cache
from importlib import resources
from typing import Any

import jinja2
from markupsafe import Markup

from evalkit.bars.verdict_view import (
    baseline_of,
    build_verdict,
    candidate_means,
    comparison_metrics,
    item_means,
    metric_rows,
    table_candidates,
)
from evalkit.bars.view import bar_rows
from evalkit.benchmarks.view import capability_view
from evalkit.contamination.view import contamination_view
from evalkit.judges.view import judges_view
from evalkit.parity.merge_agreement import agrees
from evalkit.parity.merge_agreement import describe as describe_agreement
from evalkit.record.results import RunResult
from evalkit.record.sections import parse_section
from evalkit.record.tradeoffs import MERGE_AGREEMENT, MergeAgreementSection
from evalkit.report.controls import control_views, sampling_view
from evalkit.report.failures import MAX_FAILURES_SHOWN, cut, failure_data
from evalkit.report.fields import confusion_matrices
from evalkit.report.history import history_charts
from evalkit.report.metadata import run_metadata
from evalkit.report.metric_format import is_field_metric
from evalkit.report.tradeoffs import cost_view, slice_tables, sweep_view
from evalkit.report.two_runs import identity_view

_ENV = jinja2.Environment(
    loader=jinja2.PackageLoader("evalkit.report", "templates"),
    autoescape=True,
    undefined=jinja2.StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)
# Any text a run carries may be huge (a 1 MB answer quoted in a warning): shown cut, with its length.
_ENV.filters["cut"] = cut

_STATUS_TITLE = {"blocked": "NOT DEPLOYABLE", "deployable": "deployable", "undecided": "UNDECIDED",
                 "no_bars": "no bars", "not_evaluated": "no verdict", "baseline": "no verdict",
                 "unknown": "no verdict"}


@cache
def _static(name: str) -> str:
    text = resources.files("evalkit.report").joinpath("static", name).read_text(encoding="utf-8")
    # Inlined verbatim: it must not be able to end its own element.
    if "</script" in text.lower() or "</style" in text.lower():
        raise ValueError(f"static/{name} must not contain a closing script or style tag")
    return text


def content_security_policy(script: str) -> str:
    """Return the page's CSP: no network at all, inline styles, and only our own script.

    Args:
        script: the exact text of the page's one inline script.
    """
    digest = base64.b64encode(hashlib.sha256(script.encode("utf-8")).digest()).decode("ascii")
    return ("default-src 'none'; "
            f"script-src 'sha256-{digest}'; "
            "style-src 'unsafe-inline'; img-src data:; font-src 'none'; connect-src 'none'; "
            "base-uri 'none'; form-action 'none'")


def merge_agreement_lines(run: RunResult) -> list[tuple[str, bool]]:
    """Return (sentence, at least 99%?) for each merged candidate compared with its adapter in the run."""
    found: MergeAgreementSection = parse_section(
        MergeAgreementSection, run.sections.get(MERGE_AGREEMENT) or {}, f"run {run.run_id}: sections.{MERGE_AGREEMENT}")
    return [(describe_agreement(name, entry), agrees(entry)) for name, entry in found.items()]


def report_context(run: RunResult, history: Sequence[Mapping[str, Any]] = (),
                   compare_runs: tuple[str, str] | None = None) -> dict[str, Any]:
    """Return the template context for every section the run has data for.

    Args:
        run: the run.
        history: earlier runs of the suite as summary dicts, oldest first (from the store).
        compare_runs: (baseline run id, candidate run id) when the report compares two runs.
    """
    verdict = build_verdict(run)
    per_item = item_means(run)
    means = candidate_means(run, per_item)
    compared = comparison_metrics(run)
    failures = failure_data(run, compared, {name: baseline_of(run, name) for name in compared})
    context: dict[str, Any] = {
        "run": run,
        "compare_runs": compare_runs,
        "page_title": f"{_STATUS_TITLE[verdict.status]} · {run.suite_name} · {run.run_id}",
        "verdict": verdict,
        "bars": bar_rows(run),
        "identity": identity_view(run),
        "table_candidates": table_candidates(run),
        "main_rows": metric_rows(run, means, include=lambda m: not is_field_metric(m)),
        "field_rows": metric_rows(run, means, include=is_field_metric),
        "matrices": confusion_matrices(run),
        "capability": capability_view(run, {name: baseline_of(run, name) for name in run.sections.get(
            "benchmarks") or {}}),
        "contamination": contamination_view(run),
        "judges": judges_view(run),
        "controls": control_views(run),
        "sampling": sampling_view(run),
        "failures": failures,
        "max_failures_shown": MAX_FAILURES_SHOWN,
        "history": history_charts(run, per_item, history),
        "sweep": sweep_view(run),
        "slice_tables": slice_tables(run),
        "cost": cost_view(run),
        "metadata": run_metadata(run),
        "merge_agreement": merge_agreement_lines(run),
        "css": Markup(_static("report.css")),
        "js": Markup(_static("report.js")),
        # Our own constant text (quotes and all), not data: no escaping needed.
        "csp": Markup(content_security_policy(_static("report.js"))),
        "failure_json": json_for_script(failures.payload),
    }
    sections = [("verdict", "Verdict", True), ("bars", "Bars", bool(context["bars"])),
                ("warnings", "Warnings", bool(run.warnings)),
                ("changes", "What changed", bool(context["identity"])),
                ("metrics", "Metrics", True),
                ("fields", "Fields", bool(context["field_rows"] or context["matrices"])),
                ("capability", "General capability", bool(context["capability"])),
                ("contamination", "Contamination", context["contamination"] is not None),
                ("sweep", "Sweep", context["sweep"] is not None),
                ("slices", "Slices", bool(context["slice_tables"])),
                ("usage", "Cost and latency", context["cost"] is not None),
                ("controls", "Format control", bool(context["controls"])),
                ("sampling", "Repeated samples", context["sampling"] is not None),
                ("judges", "Judges", bool(context["judges"])),
                ("failures", "Failure cases", bool(failures.total)), ("flips", "Flips", bool(failures.flips)),
                ("history", "History", bool(context["history"])), ("metadata", "Metadata", True)]
    context["nav"] = [(anchor, label) for anchor, label, present in sections if present]
    return context


def render_report(run: RunResult, *, history: Sequence[Mapping[str, Any]] = (),
                  compare_runs: tuple[str, str] | None = None) -> str:
    """Render the run's HTML report as one self-contained string.

    Args:
        run: the run.
        history: earlier runs of the suite as :meth:`RunResult.summary` dicts, oldest
            first; the history section appears when there is at least one.
        compare_runs: (baseline run id, candidate run id) for a report comparing two runs.

    Returns:
        The HTML document.
    """
    html = _ENV.get_template("report.html.j2").render(**report_context(run, history, compare_runs))
    return printable_text(html)


# Embed data in the report page so that no byte of it can end the element it sits in.
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
