"""Every stored timestamp has one form: UTC, ISO 8601, to the second, with its offset."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

from evalkit.files.home import mark_directory
from evalkit.record.run_facts import utc_now
from evalkit.runner import new_run_id

ISO_SECONDS = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+00:00$")


def test_utc_now_is_iso_to_the_second_in_utc() -> None:
    stamp = utc_now()
    assert ISO_SECONDS.match(stamp), stamp
    parsed = datetime.fromisoformat(stamp)
    assert parsed.utcoffset() == timedelta(0)
    assert abs(datetime.now(UTC) - parsed) < timedelta(seconds=5)


def test_the_marker_is_stamped_by_the_shared_clock(tmp_path: Path) -> None:
    marker = json.loads(mark_directory(tmp_path, "run").read_text(encoding="utf-8"))
    assert ISO_SECONDS.match(marker["created_at"]), marker


def test_run_ids_keep_their_compact_directory_form() -> None:
    assert re.fullmatch(r"\d{8}-\d{6}", new_run_id())
