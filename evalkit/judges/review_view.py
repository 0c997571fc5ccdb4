"""Judges under review: consistency beside kappa, and the exact prompt and raw reply per item.

Reads ``judges.<key>.consistency`` (see :mod:`evalkit.judges.consistency`) and
``judges.<key>.transcripts`` (see :mod:`evalkit.judges.stage`). Every text
reaches the page through autoescape, cut to a bound; at most
:data:`MAX_TRANSCRIPT_ITEMS` items per candidate and rubric are shown (the run's
``summary.json`` keeps them all).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from evalkit.report.failures import cut

MAX_TRANSCRIPT_ITEMS = 40
MAX_SHOWN_CHARS = 3000


@dataclass
class ConsistencyView:
    """One judge's self-audit, as a line of text and whether it gates."""

    kind: str
    text: str
    counted: bool


@dataclass
class Exchange:
    """One question to the judge and its reply."""

    label: str
    messages: list[tuple[str, str]]
    reply: str


@dataclass
class ReviewedItem:
    """Everything asked of the judge about one candidate's item."""

    candidate: str
    item_id: str
    exchanges: list[Exchange] = field(default_factory=list)


def consistency_view(entry: Mapping[str, Any] | None) -> ConsistencyView | None:
    """Return the consistency line for a rubric's section entry (None when not measured)."""
    if not entry:
        return None
    kind = str(entry.get("kind", ""))
    rates = {c: r for c, r in (entry.get("rate") or {}).items() if r is not None}
    minimum = entry.get("min_consistency")
    below = list(entry.get("below") or [])
    what = "position consistency (both orders agree)" if kind == "position" else (
        f"self-consistency over {entry.get('repeats', '?')} repeats (scores agree)")
    shown = ", ".join(f"{c} {r:.2f}" if kind != "position" else f"{r:.2f}" for c, r in rates.items()) or "–"
    text = f"{what}: {shown}"
    if kind == "position" and entry.get("first_position_rate") is not None:
        text += f"; picks position A in {float(entry['first_position_rate']) * 100:.0f}% of decided verdicts"
    if minimum is not None:
        text += (f" — below min_consistency {minimum}: its scores do not gate deployment" if below
                 else f" (≥ min_consistency {minimum})")
    totals = entry.get("items_total") or {}
    if totals:
        text += "; inconsistent items: " + ", ".join(f"{c} {n}" for c, n in totals.items())
        if kind == "position":
            text += " (counted as ties)"
    return ConsistencyView(kind=kind, text=text, counted=not below)


def reviewed_items(entry: Mapping[str, Any], limit: int = MAX_TRANSCRIPT_ITEMS) -> list[ReviewedItem]:
    """Return the judged items of a rubric with their prompts and raw replies, bounded."""
    out: list[ReviewedItem] = []
    for candidate, per_item in (entry.get("transcripts") or {}).items():
        for item_id, exchanges in list(per_item.items())[:limit]:
            item = ReviewedItem(candidate=str(candidate), item_id=str(item_id))
            for exchange in exchanges:
                messages = [(str(m.get("role", "?")), cut(str(m.get("content", "")), MAX_SHOWN_CHARS))
                            for m in exchange.get("messages") or []]
                item.exchanges.append(Exchange(label=str(exchange.get("label", "")), messages=messages,
                                               reply=cut(str(exchange.get("reply", "")), MAX_SHOWN_CHARS)))
            out.append(item)
    return out


def transcript_counts(entry: Mapping[str, Any]) -> tuple[int, int]:
    """Return (items shown, items judged) over a rubric's candidates."""
    per_candidate = [len(per_item) for per_item in (entry.get("transcripts") or {}).values()]
    return sum(min(n, MAX_TRANSCRIPT_ITEMS) for n in per_candidate), sum(per_candidate)
