"""Whether a judge's scores count: one rule for the bars, the regression verdict and the report.

A judge whose agreement with the human labels is below ``min_kappa`` (uncalibrated), or
whose self- or position-consistency is below ``min_consistency``, produces scores that
decide nothing: a bar on them is *not counted*, and neither a regression nor an
undecided comparison on them moves a run's verdict. The scores are still shown.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from evalkit.bars.result import format_value
from evalkit.judges.consistency import consistency_not_counted
from evalkit.judges.section import JUDGES, Calibration
from evalkit.record.sections import parse_section

__all__ = ["judge_metric_not_counted"]


def judge_metric_not_counted(sections: Mapping[str, Any], metric: str) -> str | None:
    """Return why a judge metric (``judge.<rubric>.<criterion>``) does not count, or None when it counts.

    Args:
        sections: the run's sections (its ``judges`` entry is read).
        metric: any metric name; metrics that are not a judge's always count.

    Raises:
        DataError: the judge's ``calibration`` does not have its schema's shape.
    """
    parts = metric.split(".", 2)
    if parts[0] != "judge" or len(parts) < 3:
        return None
    key, criterion = parts[1], parts[2]
    judges = sections.get(JUDGES)
    section = judges.get(key, {}) if isinstance(judges, Mapping) else {}
    if not isinstance(section, Mapping):
        return None
    if (inconsistent := consistency_not_counted(section, criterion)) is not None:
        return f"judge '{key}': {inconsistent}"
    calibration: Calibration | None = parse_section(Calibration | None, section.get("calibration"),
                                                    f"sections.{JUDGES}.{key}.calibration")
    if calibration is None or calibration.calibrated:
        return None
    kappa = calibration.kappa.get(criterion)
    min_kappa = calibration.min_kappa
    found = f"kappa {format_value(kappa)} for '{criterion}'" if kappa is not None else "no agreement figure"
    wanted = f" < min_kappa {format_value(min_kappa)}" if min_kappa is not None else ""
    return (
        f"judge '{key}' is not calibrated against human labels ({found}{wanted}); "
        "the bar is not counted until the judge agrees with the labels"
    )
