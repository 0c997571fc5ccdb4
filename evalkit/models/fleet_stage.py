"""The run stage that records what each endpoint of a fleet did (:mod:`evalkit.models.fleet`).

It adds a ``fleet`` section (API model name -> per endpoint: answered, failed, left out,
last error) and a warning for every endpoint that failed requests or was left out, so
the run summary says when a replica misbehaved even though every item was answered.
Fleets used inside Ray workers report through the run's executor (summed over workers).
"""

from __future__ import annotations

from evalkit.models.backend import Backend
from evalkit.progress import Progress
from evalkit.record.results import RunResult
from evalkit.record.run_facts import FleetSection
from evalkit.stages import SuiteInputs, register_stage


@register_stage("fleet")
def record_fleets(inputs: SuiteInputs, run: RunResult, backends: dict[str, Backend], progress: Progress) -> None:
    """Add the ``fleet`` section and warnings of the run's endpoint fleets (nothing when none ran)."""
    backend = backends.get("openai_server")
    reports = getattr(backend, "fleet_reports", None)
    fleets = reports() if callable(reports) else {}
    if inputs.executor is not None:  # fleets used inside Ray workers, carried back by the executor
        fleets = {**inputs.executor.fleet_reports(), **fleets}
    if not fleets:
        return
    run.set_section("fleet", fleets)
    section: FleetSection = run.section("fleet")
    for model, endpoints in section.items():
        for endpoint in endpoints:
            if endpoint.failed or endpoint.ejected:
                left_out = "; left out of the rest of the run" if endpoint.ejected else ""
                warning = (f"fleet endpoint {endpoint.url} (model '{model}'): {endpoint.failed} request(s) "
                           f"failed and were retried on other endpoints{left_out}; "
                           f"last error: {endpoint.last_error}")
                run.warnings.append(warning)
                progress.note(warning)


