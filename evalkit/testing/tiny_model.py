"""Build a tiny random Llama and its tokenizer on disk, for fast tests and examples.

The model is random, so its outputs are nonsense, but it exercises every code path of
a real model (chat template, padding, generation, adapters, lm-eval) in milliseconds.
Nothing is downloaded: the tokenizer is trained here on a small built-in corpus.

Also in this module:

* Test scaffolding: a synthetic classifier run with every report section filled, for tests, benchmarks, docs.
"""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

from evalkit.checks import Check, CheckContext, Score, build_check
from evalkit.record.results import CandidateIdentity, CandidateResult, ItemResult, RunResult

# The ChatML template SmolLM2 uses, so prompts look like the embedded model's.
CHATML_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)

_CORPUS = [
    "Classify this customer message by severity and category",
    '{"severity": "critical", "category": "account_access", "urgency": "immediate", '
    '"sentiment": "distressed", "recommended_action": "escalate_to_agent"}',
    '{"severity": "low", "category": "billing", "urgency": "routine", "sentiment": "neutral", '
    '"recommended_action": "self_service"}',
    "My account has been locked and I can't log in. I have an urgent presentation.",
    "Can you update my billing address? Thanks! Where is my package? The app keeps crashing.",
    "Question: What is the capital of France? A. Paris B. Rome C. Berlin D. Madrid Answer:",
    "abcdefghijklmnopqrstuvwxyz ABCDEFGHIJKLMNOPQRSTUVWXYZ 0123456789 .,;:!?'\"{}[]()<>-_/\\@#$%&*+=",
]


def build_tiny_llama(directory: Path, seed: int = 0, layers: int = 2, hidden: int = 32) -> Path:
    """Write a random Llama model and a trained byte-level BPE tokenizer to ``directory``.

    Args:
        directory: where to save (created if missing).
        seed: torch seed for the random weights.
        layers: decoder layers.
        hidden: hidden size.

    Returns:
        ``directory``, loadable with ``from_pretrained``.
    """
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    directory.mkdir(parents=True, exist_ok=True)
    specials = ["<unk>", "<|im_start|>", "<|im_end|>", "<pad>"]
    bpe = Tokenizer(models.BPE(unk_token="<unk>"))
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=400, special_tokens=specials, initial_alphabet=pre_tokenizers.ByteLevel.alphabet()
    )
    bpe.train_from_iterator(_CORPUS * 4, trainer)
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=bpe, bos_token="<|im_start|>", eos_token="<|im_end|>", pad_token="<pad>",
        unk_token="<unk>",
    )
    tokenizer.chat_template = CHATML_TEMPLATE
    tokenizer.save_pretrained(str(directory))
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=hidden,
        intermediate_size=hidden * 2,
        num_hidden_layers=layers,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=1024,
        tie_word_embeddings=True,
        # Wide random weights, so that the random model writes varied text, not blanks.
        initializer_range=0.5,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    torch.manual_seed(seed)
    model = LlamaForCausalLM(config)
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.save_pretrained(str(directory))
    return directory


# Three classifier items in the dataset format, for small suites in tests.
CLASSIFIER_ITEMS = [
    {
        "instruction": "Classify this customer message by severity and category",
        "input": "My account has been locked and I have a presentation in 2 hours!",
        "output": '{"severity": "critical", "category": "account_access", "urgency": "immediate", '
        '"sentiment": "distressed", "recommended_action": "escalate_to_agent"}',
    },
    {
        "instruction": "Classify this customer message by severity and category",
        "input": "Can you update my billing address?",
        "output": '{"severity": "low", "category": "billing", "urgency": "routine", '
        '"sentiment": "neutral", "recommended_action": "self_service"}',
    },
    {
        "instruction": "Classify this customer message by severity and category",
        "input": "The tracking page shows my parcel stuck for a week, annoying.",
        "output": '{"severity": "medium", "category": "shipping", "urgency": "routine", '
        '"sentiment": "frustrated", "recommended_action": "create_ticket"}',
    },
]


def write_jsonl(path: Path, rows: list[dict[str, Any]]) -> Path:
    """Write rows as JSONL (creating the directory) and return the path."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    return path


# Test scaffolding: a synthetic classifier run with every report section filled, for tests, benchmarks, docs.
#
# The run looks like the customer-support classifier suite: JSON predictions over five
# enum fields, a baseline and fine-tuned candidates of different quality, MMLU-style
# benchmark results per subject, a judge rubric, bars, and the comparison computed by
# :func:`evalkit.comparison.compare.compare_candidates`. ``hostile=True`` makes some predictions,
# inputs and ids the kind of text that breaks a careless HTML page.

FIELDS: dict[str, list[str]] = {
    "severity": ["critical", "high", "medium", "low"],
    "category": ["account_access", "billing", "shipping", "technical", "general_inquiry"],
    "urgency": ["immediate", "same_day", "routine"],
    "sentiment": ["distressed", "frustrated", "neutral", "positive"],
    "recommended_action": ["escalate_to_agent", "create_ticket", "self_service"],
}
SUBJECTS = ["abstract_algebra", "anatomy", "astronomy", "business_ethics", "clinical_knowledge",
            "college_biology", "college_chemistry", "college_computer_science", "college_mathematics",
            "computer_security", "econometrics", "formal_logic", "global_facts", "high_school_biology",
            "high_school_physics", "international_law", "jurisprudence", "machine_learning", "marketing",
            "moral_scenarios", "nutrition", "philosophy", "prehistory", "professional_law", "virology"]
HOSTILE_OUTPUTS = [
    "<script>window.__pwned = 'script'; alert('script')</script>",
    "</textarea></pre></script><script>window.__pwned = 'close'; alert('close')</script>",
    '<img src=x onerror="window.__pwned=\'img\'; alert(\'img\')">',
    '<a href="javascript:window.__pwned=\'link\';alert(\'link\')">click me</a>',
    '{"severity": "<svg onload=alert(\'svg\')>", "category": "billing</td></tr></table>", '
    '"urgency": "routine", "sentiment": "neutral", "recommended_action": "self_service"}',
    "\u2028\u2029 <!-- <script> --> ]]> {{ 7*7 }} ${alert('tpl')} &lt;b&gt;",
    "A" * 100_000,
]
JUDGE_RUBRIC = "classifier_quality"
JUDGE_CRITERIA = ["format", "correctness", "helpfulness"]

# name -> (share of fields right, share of predictions that are not JSON)
_QUALITY = {"base": (0.55, 0.15), "base-fewshot": (0.7, 0.05), "lora": (0.97, 0.005), "merged": (0.96, 0.01)}


def _expected(rng: random.Random) -> dict[str, str]:
    return {name: rng.choice(labels) for name, labels in FIELDS.items()}


def _predict(rng: random.Random, expected: dict[str, str], right: float, broken: float) -> str:
    if rng.random() < broken:
        return rng.choice(["Sure! The severity is high.", '{"severity": "high", "category": ',
                           "I cannot classify this message."])
    got = {name: value if rng.random() < right else rng.choice(FIELDS[name]) for name, value in expected.items()}
    if rng.random() < 0.03:
        got["severity"] = "urgent"  # a label outside the schema
    return json.dumps(got)


def _checks() -> list[Check]:
    """The suite's real checks, so scores and reasons are exactly what a run produces."""
    context = CheckContext(base_dir=Path("."), source="synthetic run")
    return [build_check(name, {}, context) for name in ("exact_match", "json_valid", "field_accuracy")]


def synthetic_run(n_items: int = 200, candidates: tuple[str, ...] = ("base", "base-fewshot", "lora", "merged"),
                  *, hostile: bool = False, judged_items: int = 50, seed: int = 0,
                  with_comparison: bool = True) -> RunResult:
    """Return a run with every section the report knows.

    Args:
        n_items: items per candidate.
        candidates: candidate names; the first is the baseline. Names not in the
            built-in quality table get a middling quality.
        hostile: plant hostile text in predictions, inputs, reasons and ids.
        judged_items: items that get judge scores (the first ones).
        seed: randomness seed (the run is deterministic given it).
        with_comparison: compute ``sections["comparison"]`` with evalkit.comparison.compare.
    """
    rng = random.Random(seed)
    checks = _checks()
    truths = [_expected(rng) for _ in range(n_items)]
    ids = [f"item-{n:05d}" for n in range(n_items)]
    messages = [f"Ticket {n}: my order is late and the app keeps crashing." for n in range(n_items)]
    if hostile:
        ids[3] = "<script>window.__pwned='id'</script>"
        messages[4] = "</textarea><img src=x onerror=\"window.__pwned='input'\">"
    results = []
    for c_no, name in enumerate(candidates):
        right, broken = _QUALITY.get(name, (0.75, 0.05))
        crng = random.Random(f"{seed}-{name}")
        items = []
        for n, truth in enumerate(truths):
            expected_text = json.dumps(truth)
            prediction = _predict(crng, truth, right, broken)
            if hostile and c_no > 0 and n < len(HOSTILE_OUTPUTS):
                prediction = HOSTILE_OUTPUTS[n]
            scores = {name: score for check in checks for name, score in check(prediction, expected_text).items()}
            if n < judged_items:
                for criterion in JUDGE_CRITERIA:
                    value = float(max(1, min(5, round(crng.gauss(2.5 + 2 * right, 0.9)))))
                    reasoning = f"The {criterion} is {'weak' if value < 3 else 'fine'}: compared the fields."
                    if hostile and n == 0:
                        value, reasoning = 1.0, "<script>window.__pwned='judge'</script> terrible"
                    scores[f"judge.{JUDGE_RUBRIC}.{criterion}"] = Score(value, reasoning)
            items.append(ItemResult(item_id=ids[n], fields={"input": messages[n], "output": expected_text},
                                    prompt=f"Classify: {messages[n]}", expected=expected_text,
                                    prediction=prediction, scores=scores))
        adapter = None if name.startswith("base") else f"adapters/{name}"
        identity = CandidateIdentity(
            model_source="smollm2-135m-instruct", model_fingerprint=f"{seed:02d}" + "ab12" * 15 + "cd",
            adapter=adapter, adapter_hash=("9f3e" * 16) if adapter else None, backend="hf",
            prompt_hash=f"{c_no:02d}" + "7c1d" * 15 + "ee")
        results.append(CandidateResult(name=name, identity=identity, items=items,
                                       seconds=0.02 * n_items + c_no))
    baseline = candidates[0]
    run = RunResult(
        run_id=f"20261128-1{seed:05d}", suite_name="classifier", suite_path="suites/classifier.yaml",
        baseline=baseline, candidates=results, started_at="2026-11-28T10:00:00+00:00",
        finished_at="2026-11-28T10:14:05+00:00", dataset_hash="5e1f" * 16, evalkit_version="0.1.0",
        command="evalkit run suites/classifier.yaml",
    )
    if hostile:
        run.warnings.append("2 eval items also appear in train: <b>leakage</b> <script>window.__pwned='warn'</script>")
    run.set_section("benchmarks", _benchmarks(candidates, seed), only_set=True)
    run.set_section("contamination", _contamination(candidates, ids, hostile), only_set=True)
    run.set_section("judges", _judges(run, candidates), only_set=True)
    if with_comparison:
        # numpy (via compare): loaded only when this compares
        from evalkit.comparison.compare import compare_candidates

        for result in run.candidates:
            result.item_values["mmlu_mini"] = _benchmark_items(result.name, seed)
        run.set_section("comparison", compare_candidates(run, seed=seed))
    run.set_section("bars", [
        {"candidate": name, "expression": "exact_match >= 0.80", "metric": "exact_match",
         "status": "passed" if result.metrics().get("exact_match", 0) >= 0.8 else "failed",
         "passed": result.metrics().get("exact_match", 0) >= 0.8, "value": result.metrics().get("exact_match"),
         "message": f"exact_match = {result.metrics().get('exact_match', 0):.3f}"}
        for name, result in ((c.name, c) for c in run.candidates[1:])
    ], only_set=True)
    return run


def _accuracy(name: str) -> float:
    return {"base": 0.30, "base-fewshot": 0.31, "lora": 0.15, "merged": 0.29}.get(name, 0.3)


def _benchmark_items(name: str, seed: int) -> dict[str, float]:
    rng = random.Random(f"mmlu-{seed}-{name}")
    return {f"{s}/{i}": float(rng.random() < _accuracy(name)) for s in SUBJECTS for i in range(10)}


def _benchmarks(candidates: tuple[str, ...], seed: int) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name in candidates:
        items = _benchmark_items(name, seed)
        subjects = {s: {"acc": sum(items[f"{s}/{i}"] for i in range(10)) / 10, "n": 10} for s in SUBJECTS}
        acc = sum(items.values()) / len(items)
        out[name] = {"mmlu_mini": {"acc": acc, "stderr": (acc * (1 - acc) / len(items)) ** 0.5,
                                   "formulation": "letter", "num_fewshot": 0, "fewshot_source": None,
                                   "n": len(items), "subjects": subjects}}
    return out


def _contamination(candidates: tuple[str, ...], ids: list[str], hostile: bool) -> dict[str, Any]:
    """The contamination section: base models unknown, the fine-tunes trained on 2 MMLU items and up to 3 eval items."""
    shared = "<script>window.__pwned='ngram'</script> my order is late" if hostile else "my order is late and the app"
    per_candidate: dict[str, Any] = {}
    for name in candidates:
        if name.startswith("base"):
            per_candidate[name] = {"training": {"status": "unknown", "reason": "a base model's pretraining data"}}
            continue
        mmlu = [{"item_id": f"{SUBJECTS[0]}/{i}", "ngram": f"question {i} of the planted subject"} for i in range(2)]
        planted = ids[3:6]  # up to three eval items (a small synthetic run has fewer)
        per_candidate[name] = {
            "training": {"status": "known", "source": "manifest", "path": "data/classifier/train.jsonl",
                         "sha256": "2760" * 16},
            "benchmarks": {"mmlu_mini": {"items": 10 * len(SUBJECTS), "contaminated": 2,
                                         "fraction": 2 / (10 * len(SUBJECTS)), "examples": mmlu}},
            "eval_set": {"items": len(ids), "contaminated": len(planted), "fraction": len(planted) / len(ids),
                         "too_short": 1, "examples": [{"item_id": item, "ngram": shared} for item in planted]},
        }
    return {"n": 13, "min_words": 8, "candidates": per_candidate}


def _judges(run: RunResult, candidates: tuple[str, ...]) -> dict[str, Any]:
    per_candidate: dict[str, Any] = {}
    for result in run.candidates:
        per_candidate[result.name] = {}
        for criterion in JUDGE_CRITERIA:
            values = list(result.values(f"judge.{JUDGE_RUBRIC}.{criterion}").values())
            mean = sum(values) / len(values) if values else 0.0
            std = (sum((v - mean) ** 2 for v in values) / max(len(values) - 1, 1)) ** 0.5
            per_candidate[result.name][criterion] = {"mean": mean, "std": std, "n": len(values)}
    return {JUDGE_RUBRIC: {
        "judge": {"provider": "local", "model": "smollm2-135m-instruct"}, "mode": "pointwise",
        "calibration": {"kappa": {"format": 0.62, "correctness": 0.31, "helpfulness": 0.45},
                        "calibrated": False, "min_kappa": 0.4},
        "errors": {name: (1 if name == candidates[-1] else 0) for name in candidates},
        "per_candidate": per_candidate,
    }}
