"""``answer_words``: a run stage adding each answer's word count as a metric of every candidate.

It runs after evalkit's own stages and before the comparison, so the metric is compared
with the baseline's and a bar can name it, like a check's.
"""

from __future__ import annotations

from evalkit.models.backend import Backend
from evalkit.progress import Progress
from evalkit.record.results import RunResult
from evalkit.stages import SuiteInputs, register_stage


@register_stage("answer_words")
def answer_words(inputs: SuiteInputs, run: RunResult, backends: dict[str, Backend], progress: Progress) -> None:
    """Record every item's answer length in words under the metric ``answer_words``."""
    for candidate in run.candidates:
        candidate.item_values["answer_words"] = {item.item_id: float(len(item.prediction.split()))
                                                 for item in candidate.items}
