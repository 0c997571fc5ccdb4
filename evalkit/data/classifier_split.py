"""Split the generated classifier examples and write the dataset files and card.

The split keeps near duplicates on one side (a model must not be scored on a message it
trained on), stratified by category and severity; the files are written atomically.

Also in this module: a small DPO preference set for the classifier, drawn from its
training split only (``make_preferences``, ``write_preferences``).
"""

from __future__ import annotations

import json
import random
from collections import Counter
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from evalkit.data.classifier import (
    CLASSIFIER_INSTRUCTION,
    DEFAULT_COUNT,
    DEFAULT_EVAL_FRACTION,
    DEFAULT_EXTRA_TRAIN,
    DEFAULT_SEED,
    FIELD_VALUES,
    OUTPUT_FIELDS,
    canonical_output,
    generate_examples,
    weighted_quotas,
)
from evalkit.data.items import DEFAULT_THRESHOLD, Item, find_near_duplicates, normalize_text
from evalkit.errors import DataError
from evalkit.files.home import write_text
from evalkit.prompting import PromptTemplate


def _stratum(example: Mapping[str, str]) -> str:
    try:
        labels = json.loads(example["output"])
        return f"{labels['category']}/{labels['severity']}"
    except (KeyError, TypeError, ValueError):
        return ""


def split_examples(
    examples: Sequence[dict[str, str]],
    eval_fraction: float = DEFAULT_EVAL_FRACTION,
    seed: int = DEFAULT_SEED,
    threshold: float = DEFAULT_THRESHOLD,
) -> tuple[list[dict[str, str]], list[dict[str, str]]]:
    """Split examples into train and eval without cross-split near duplicates.

    Messages are first grouped into connected components of near duplicates
    (:func:`~evalkit.data.items.find_near_duplicates` at
    ``threshold``). Eval items are drawn per (category, severity) stratum,
    preferring messages with no near twin at all; a message with twins only
    enters eval together with its whole group. A final check moves any eval
    item that still has a train near duplicate into train.

    Args:
        examples: Examples with an ``"input"`` message and JSON ``"output"``.
        eval_fraction: Target share of eval examples, in (0, 1).
        seed: Seed for the deterministic choice of eval items.
        threshold: Near-duplicate threshold passed to ``find_near_duplicates``.

    Returns:
        ``(train, eval)`` lists, each in the original relative order.

    Raises:
        ValueError: If ``eval_fraction`` is not in (0, 1).
    """
    if not 0.0 < eval_fraction < 1.0:
        raise ValueError(f"eval_fraction must be in (0, 1), got {eval_fraction}")
    texts = [ex["input"] for ex in examples]
    size = len(texts)

    parent = list(range(size))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for pair in find_near_duplicates(texts, texts, threshold=threshold):
        a, b = root(pair.eval_index), root(pair.train_index)
        if a != b:
            parent[max(a, b)] = min(a, b)
    groups: dict[int, list[int]] = {}
    for i in range(size):
        groups.setdefault(root(i), []).append(i)

    strata = [_stratum(ex) for ex in examples]
    stratum_sizes = Counter(strata)
    # Sorted keys make the quota tie-breaking independent of hash order.
    quotas = weighted_quotas(round(size * eval_fraction), {s: float(stratum_sizes[s]) for s in sorted(stratum_sizes)})

    rng = random.Random(seed)
    order = list(range(size))
    rng.shuffle(order)
    order.sort(key=lambda i: len(groups[root(i)]) > 1)  # stable: singletons first

    taken: Counter[str] = Counter()
    eval_set: set[int] = set()
    for i in order:
        if i in eval_set or taken[strata[i]] >= quotas[strata[i]]:
            continue
        members = groups[root(i)]
        need = Counter(strata[m] for m in members)
        if any(taken[s] + k > quotas[s] for s, k in need.items()):
            continue
        eval_set.update(members)
        taken.update(need)
    # A stratum that could not fill its quota leaves room: top up with any
    # remaining stand-alone message so the eval size stays on target.
    target = sum(quotas.values())
    for i in order:
        if len(eval_set) >= target:
            break
        if i not in eval_set and len(groups[root(i)]) == 1:
            eval_set.add(i)

    # Safety net (normally a no-op): move leaking eval items to train until clean.
    while True:
        eval_idx = sorted(eval_set)
        train_idx = [i for i in range(size) if i not in eval_set]
        leaks = find_near_duplicates([texts[i] for i in train_idx], [texts[i] for i in eval_idx], threshold)
        if not leaks:
            break
        eval_set.difference_update(eval_idx[p.eval_index] for p in leaks)

    return [dict(examples[i]) for i in train_idx], [dict(examples[i]) for i in eval_idx]


def extra_training_examples(
    train: Sequence[dict[str, str]],
    eval_: Sequence[dict[str, str]],
    extra: int,
    seed: int = DEFAULT_SEED,
) -> list[dict[str, str]]:
    """Generate more training examples that keep the eval split clean.

    ``extra`` messages come from the generator with ``seed + 1`` (the split's own seed
    made the eval split, which must not change when training data grows). A message
    equal to one already in train or eval (after normalisation) is dropped, and so is
    one with a near duplicate in eval, so the extra data leaks nothing.

    Args:
        train: The split's training examples.
        eval_: The split's eval examples.
        extra: How many messages to generate (fewer are kept after the filters).
        seed: The split's seed.

    Returns:
        The kept examples, in generation order.
    """
    if extra <= 0:
        return []
    seen = {normalize_text(ex["input"]) for ex in (*train, *eval_)}
    fresh = [ex for ex in generate_examples(extra, seed + 1) if normalize_text(ex["input"]) not in seen]
    pairs = find_near_duplicates([ex["input"] for ex in fresh], [ex["input"] for ex in eval_])
    leaked = {pair.train_index for pair in pairs}
    return [ex for i, ex in enumerate(fresh) if i not in leaked]


def _jsonl(examples: Sequence[Mapping[str, str]]) -> str:
    lines = [
        json.dumps({"instruction": ex["instruction"], "input": ex["input"], "output": ex["output"]}) for ex in examples
    ]
    return "".join(line + "\n" for line in lines)


def render_readme(
    train: Sequence[Mapping[str, str]],
    eval_: Sequence[Mapping[str, str]],
    count: int = DEFAULT_COUNT,
    seed: int = DEFAULT_SEED,
    extra_train: int = DEFAULT_EXTRA_TRAIN,
) -> str:
    """Render the dataset card (label rules, regeneration command, counts, samples).

    Args:
        train: Training examples.
        eval_: Evaluation examples.
        count: The ``count`` the files were generated with.
        seed: The ``seed`` the files were generated with.
        extra_train: The ``extra_train`` the files were generated with.

    Returns:
        Markdown text ending with a newline.
    """
    lines = [
        "# Customer-support classifier data",
        "",
        "Synthetic customer messages labelled with severity, category, urgency, sentiment and",
        "recommended action. Generated by `evalkit/data/classifier.py`; do not edit by hand.",
        "",
        "## Regenerate",
        "",
        "```bash",
        "evalkit data classifier --out data/classifier"
        + (
            ""
            if (count, seed, extra_train) == (DEFAULT_COUNT, DEFAULT_SEED, DEFAULT_EXTRA_TRAIN)
            else f" --count {count} --seed {seed} --extra-train {extra_train}"
        ),
        "# equivalent:",
        'python -c "from pathlib import Path; from evalkit.data.classifier_split import write_classifier_data; '
        f"write_classifier_data(Path('data/classifier'), count={count}, seed={seed}, extra_train={extra_train})\"",
        "```",
        "",
        "The output is byte-for-byte reproducible for a given count, seed and extra-train",
        "(`tests/data/test_classifier_data.py` checks the committed files).",
        "",
        "## Format",
        "",
        "`train.jsonl` and `eval.jsonl` hold one JSON object per line with keys `instruction`,",
        "`input` and `output` (`json.dumps` defaults, so non-ASCII characters are escaped).",
        f"`instruction` is always `{CLASSIFIER_INSTRUCTION}`.",
        "`output` is a JSON string with keys in this order: " + ", ".join(f"`{f}`" for f in OUTPUT_FIELDS) + ",",
        'serialised with `json.dumps` defaults (`{"severity": "critical", "category": ...}`).',
        "",
        "## Label rules",
        "",
        "- **severity**",
        "  - `critical`: fraud or a security breach (an unauthorised charge, a taken-over account,",
        "    leaked data), or the customer is blocked / has lost money AND states a deadline or",
        "    emergency.",
        "  - `high`: blocked or money lost, no deadline or emergency.",
        "  - `medium`: something works wrong but there is a workaround, or the service is only",
        "    degraded.",
        "  - `low`: a request or a question.",
        "- **urgency**: critical -> `immediate`, high -> `same_day`, medium/low -> `routine`.",
        "- **recommended_action**: critical/high -> `escalate_to_agent`, medium -> `create_ticket`,",
        "  low -> `self_service`.",
        "- **sentiment**: the customer's tone: `distressed` (panic, fear), `frustrated` (anger,",
        "  annoyance), `neutral`, `positive` (thanks, praise). Tone is independent of severity:",
        "  a polite customer can have an emergency, an angry one a trivial question.",
        "- **category**: the topic: `account_access` (login, passwords, 2FA, account settings),",
        "  `billing` (charges, refunds, invoices, payment methods), `shipping` (deliveries,",
        "  tracking, returns logistics), `technical` (app/site bugs, sync, API, data),",
        "  `general_inquiry` (stores, warranty, loyalty program, policies, impersonation scams).",
        "",
        "## How messages are built",
        "",
        "Latent labels are sampled first (category balanced exactly; situation kind fraud /",
        "blocked+emergency / blocked / degraded / request per category quota; tone per situation),",
        "then the message is composed from a situation phrasing with random slot values, plus",
        "optional greeting, context sentence, 'what I tried' sentence, deadline or emergency",
        "clause (critical non-fraud only, always present there), tone phrase(s) and sign-off.",
        "Typos (letter swaps/drops/doubles) only touch filler words; some messages are lowercased",
        "or lose their final punctuation. Messages are unique after normalisation.",
        "",
        "The split is stratified by (category, severity). Messages are grouped by near",
        f"duplicates (word-trigram overlap coefficient >= {DEFAULT_THRESHOLD}, see",
        "`evalkit/data/items.py`); eval only takes messages without a near twin, so",
        "no eval message has an exact or near duplicate in train.",
        "",
        f"Then {extra_train} more messages are generated with seed {seed + 1} for train only",
        "(a 135M model needs more than the split's training share to learn the severity",
        "rules); any equal to a message already there, or near-duplicating an eval message,",
        "is dropped, so the eval split is the same whatever `extra_train` is.",
        "",
        "## Counts",
        "",
        f"{len(train)} train / {len(eval_)} eval examples.",
        "",
    ]
    parsed = {
        "train": [json.loads(ex["output"]) for ex in train],
        "eval": [json.loads(ex["output"]) for ex in eval_],
    }
    for field in OUTPUT_FIELDS:
        lines += [f"### {field}", "", "| value | train | eval | total | share |", "|---|---:|---:|---:|---:|"]
        for value in FIELD_VALUES[field]:
            n_train = sum(1 for labels in parsed["train"] if labels[field] == value)
            n_eval = sum(1 for labels in parsed["eval"] if labels[field] == value)
            total = n_train + n_eval
            share = total / max(1, len(train) + len(eval_))
            lines.append(f"| `{value}` | {n_train} | {n_eval} | {total} | {share:.0%} |")
        lines.append("")
    lines += ["## Sample lines (eval.jsonl)", "", "```json"]
    lines += [_jsonl([ex]).rstrip("\n") for ex in list(eval_)[:6]]
    lines += ["```", ""]
    return "\n".join(lines)


def write_classifier_data(
    out_dir: Path,
    count: int = DEFAULT_COUNT,
    seed: int = DEFAULT_SEED,
    extra_train: int = DEFAULT_EXTRA_TRAIN,
) -> tuple[Path, Path]:
    """Generate, split and write the classifier dataset.

    Writes ``train.jsonl``, ``eval.jsonl`` and a ``README.md`` dataset card into
    ``out_dir`` (created if missing), each atomically.

    Args:
        out_dir: Output directory.
        count: Total number of examples before the split.
        seed: Seed for generation and split.
        extra_train: Messages generated for train only after the split
            (:func:`extra_training_examples`); the eval split does not depend on it.

    Returns:
        ``(train_path, eval_path)``.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    examples = generate_examples(count, seed)
    train, eval_ = split_examples(examples, DEFAULT_EVAL_FRACTION, seed)
    train = [*train, *extra_training_examples(train, eval_, extra_train, seed)]
    train_path = out_dir / "train.jsonl"
    eval_path = out_dir / "eval.jsonl"
    write_text(train_path, _jsonl(train))
    write_text(eval_path, _jsonl(eval_))
    write_text(out_dir / "README.md", render_readme(train, eval_, count, seed, extra_train))
    return train_path, eval_path


# A small DPO preference set for the classifier, generated from its training split.
#
# Every pair keeps a training example's prompt and prefers its canonical JSON answer over
# one of three kinds of wrong answer, in equal shares:
#
# * ``verbose``: the right labels wrapped in chatter and a markdown code fence;
# * ``misformatted``: the right labels in another format (keys shuffled, single quotes,
#   or pretty-printed over several lines);
# * ``mislabelled``: canonical JSON with one field changed to another allowed value.
#
# ``prompt`` holds the chat messages the suite's template renders for the example (the
# same :class:`~evalkit.prompting.PromptTemplate` evaluation uses), so DPO trains on the
# prompts the suite asks. The set is drawn only from training data, never from eval items.

DEFAULT_PAIRS = 240
PREFERENCE_SEED = 7
REJECTION_KINDS = ("verbose", "misformatted", "mislabelled")

_VERBOSE_OPENERS = (
    "Sure! Here is the classification of this customer message:",
    "Of course. After reading the message carefully, I would classify it as follows:",
    "Happy to help! Based on the content, here is my analysis:",
)
_VERBOSE_CLOSERS = (
    "Let me know if you need anything else!",
    "I hope this helps with routing the ticket.",
    "Feel free to ask if you want me to explain the reasoning.",
)


def _verbose(labels: dict[str, str], rng: random.Random) -> str:
    body = canonical_output(labels)
    return f"{rng.choice(_VERBOSE_OPENERS)}\n\n```json\n{body}\n```\n\n{rng.choice(_VERBOSE_CLOSERS)}"


def _misformatted(labels: dict[str, str], rng: random.Random) -> str:
    style = rng.randrange(3)
    if style == 0:
        keys = list(labels)
        while keys == list(labels):
            rng.shuffle(keys)
        return json.dumps({k: labels[k] for k in keys})
    if style == 1:
        return str(dict(labels))  # Python repr: single quotes, not JSON
    return json.dumps(labels, indent=2)


def _mislabelled(labels: dict[str, str], rng: random.Random) -> str:
    wrong = dict(labels)
    field = rng.choice(sorted(FIELD_VALUES))
    wrong[field] = rng.choice([v for v in FIELD_VALUES[field] if v != labels[field]])
    return canonical_output(wrong)


def rejected_answer(labels: dict[str, str], kind: str, rng: random.Random) -> str:
    """Return a wrong answer of ``kind`` (one of :data:`REJECTION_KINDS`) for these labels."""
    makers = {"verbose": _verbose, "misformatted": _misformatted, "mislabelled": _mislabelled}
    return makers[kind](labels, rng)


def make_preferences(
    train_items: Sequence[Item],
    template: PromptTemplate,
    source: Path,
    pairs: int = DEFAULT_PAIRS,
    seed: int = PREFERENCE_SEED,
) -> list[dict[str, Any]]:
    """Return ``pairs`` preference rows (``prompt``, ``chosen``, ``rejected``, ``rejected_kind``).

    Args:
        train_items: the classifier's training examples (``output`` holds canonical JSON).
        template: the suite's prompt template; renders ``prompt`` and ``chosen``.
        source: the training file, named in errors.
        pairs: how many pairs (at most one per training example).
        seed: the sampling seed.

    Raises:
        DataError: fewer training examples than pairs, or an output is not classifier JSON.
    """
    if pairs > len(train_items):
        raise DataError(f"{source}: {len(train_items)} examples cannot make {pairs} pairs; lower --pairs")
    rng = random.Random(seed)
    chosen_items = rng.sample(list(train_items), pairs)
    rows: list[dict[str, Any]] = []
    for number, item in enumerate(chosen_items):
        where = f"{source}:{item.line}"
        chosen = template.expected_output(item.fields, where)
        try:
            labels = json.loads(chosen)
            canonical_output(labels)
        except (ValueError, TypeError) as exc:
            raise DataError(f"{where}: output is not classifier JSON ({exc}); regenerate the data") from None
        kind = REJECTION_KINDS[number % len(REJECTION_KINDS)]
        rows.append({
            "prompt": template.messages(item.fields, where),
            "chosen": chosen,
            "rejected": rejected_answer(labels, kind, rng),
            "rejected_kind": kind,
        })
    return rows


def write_preferences(rows: Sequence[dict[str, Any]], out: Path) -> Path:
    """Write preference rows as JSONL (atomically: a temporary file renamed into place)."""
    return write_text(out, "".join(json.dumps(row) + "\n" for row in rows))
