"""Where in the demo adapter's update does the task live, and where the forgetting? No training.

Run: .venv/bin/python benchmarks/remedy_ablation.py [PART ...] [--docs 32] [--json OUT.json]
     (PART: ``all``, ``drop=down_proj``, ``layers=22-29;rank=4``, ``scale=0.5``: see ``Part``)

The demo adapter (``train/classifier-lora``: r 16 on the attention and MLP projections of
layers 15-29) fails a 3% general-capability gate (+12.5% bits per byte on the
``evalkit_general_text`` probe), and scaling its whole update down trades exact match
away faster than it buys general capability back (BENCHMARKS "The remedy"). This keeps
parts of the update and drops others (by module kind, by layer range, by rank through a
truncated SVD of each module's update B·A), and measures each part, side by side in one
process, on:

* teacher-forced exact match on the classifier's 80 eval items
  (``train_recipes.teacher_forced_exact_match``: exactly when greedy decoding would
  answer the expected JSON);
* the relative change of NLL per byte on ``general_nll.general_documents`` (the first
  prose paragraphs of the Python language reference's topics: the source of the probe's
  ``reference`` genre, not of its essays or dialogue), with a paired bootstrap 95% interval.

A part that keeps exact match >= 0.80 and moves general text by less than 3% points to a
recipe (train only those modules or layers, or at that rank); one that does not says the
task and the forgetting share the same directions of the update.
"""

from __future__ import annotations

import argparse
import json
import platform
import re
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))

from general_nll import general_documents, nll_per_document, paired_change  # noqa: E402

ATTENTION = ("q_proj", "k_proj", "v_proj", "o_proj")
MLP = ("gate_proj", "up_proj", "down_proj")


def _layer(name: str) -> int:
    match = re.search(r"layers\.(\d+)\.", name)
    assert match, name
    return int(match.group(1))


def _module(name: str) -> str:
    kind = name.rsplit(".", 1)[-1]
    assert kind in (*ATTENTION, *MLP), name
    return kind


@dataclass(frozen=True)
class Part:
    """A part of the update: the modules kept, the rank each keeps, a factor on what is kept.

    Written ``drop=down_proj,o_proj;layers=22-29;rank=4;scale=0.8`` (any subset, ``;``
    between keys; ``all`` is the whole update): ``drop`` names module kinds whose update
    is removed, ``layers`` the (inclusive) range kept, ``rank`` truncates every kept
    module's update B·A to its top singular directions, ``scale`` multiplies what is kept.
    """

    dropped: tuple[str, ...] = ()
    layers: tuple[int, int] = (0, 10**6)
    rank: int | None = None
    scale: float = 1.0

    @classmethod
    def parse(cls, text: str) -> Part:
        """Read a part from its written form (see the class docstring)."""
        fields: dict[str, Any] = {}
        for clause in filter(None, (c.strip() for c in text.split(";"))):
            if clause == "all":
                continue
            key, _, value = clause.partition("=")
            if key == "drop":
                kinds = tuple(v.strip() for v in value.split(","))
                unknown = set(kinds) - set(ATTENTION + MLP)
                if unknown:
                    raise SystemExit(f"remedy_ablation: unknown module kind(s) {sorted(unknown)} in {text!r}")
                fields["dropped"] = kinds
            elif key == "layers":
                low, _, high = value.partition("-")
                fields["layers"] = (int(low), int(high or low))
            elif key == "rank":
                fields["rank"] = int(value)
            elif key == "scale":
                fields["scale"] = float(value)
            else:
                raise SystemExit(f"remedy_ablation: unknown key {key!r} in {text!r} (drop, layers, rank, scale)")
        return cls(**fields)

    def keeps(self, name: str) -> bool:
        """Whether the module called ``name`` keeps its update."""
        return _module(name) not in self.dropped and self.layers[0] <= _layer(name) <= self.layers[1]


def lora_modules(model: Any) -> dict[str, Any]:
    """Return the peft model's LoRA layers by name (those holding ``lora_A``)."""
    return {name: module for name, module in model.named_modules() if hasattr(module, "lora_A") and module.lora_A}


def apply_part(modules: dict[str, Any], originals: dict[str, tuple[torch.Tensor, torch.Tensor]], part: Part) -> None:
    """Set every module's A and B to the part's share of the trained update (from ``originals``)."""
    for name, module in modules.items():
        a, b = originals[name]
        if not part.keeps(name):
            new_a, new_b = a.clone(), torch.zeros_like(b)
        elif part.rank is not None:
            # B·A is the update (times the scaling, unchanged): keep its top singular directions.
            u, s, vh = torch.linalg.svd(b @ a, full_matrices=False)
            new_b, new_a = torch.zeros_like(b), torch.zeros_like(a)
            new_b[:, : part.rank] = u[:, : part.rank] * s[: part.rank]
            new_a[: part.rank, :] = vh[: part.rank, :]
        else:
            new_a, new_b = a.clone(), b.clone()
        module.lora_A["default"].weight.data.copy_(new_a)
        module.lora_B["default"].weight.data.copy_(new_b * part.scale)


def main() -> None:
    """Score every part of the update; print one JSON line each (and all of them to ``--json``)."""
    from peft import PeftModel
    from train_recipes import teacher_forced_exact_match_of
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from evalkit.record.run_facts import cpu_description
    from evalkit.train.candidates import base_model
    from evalkit.train.config import load_train_config

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--adapter", type=Path, default=REPO / "train" / "classifier-lora")
    parser.add_argument("--docs", type=int, default=32)
    parser.add_argument("parts", nargs="*", default=["all"], help="parts of the update (see Part), each scored")
    parser.add_argument("--json")
    args = parser.parse_args()

    config = load_train_config(REPO / "train" / "classifier-lora.yaml")
    base_dir = base_model(config).path
    tokenizer = AutoTokenizer.from_pretrained(str(base_dir))
    documents = general_documents(args.docs)
    print(json.dumps({"cpu": cpu_description(), "machine": platform.machine(), "threads": torch.get_num_threads(),
                      "documents": len(documents), "adapter": args.adapter.name}), flush=True)
    model: Any = AutoModelForCausalLM.from_pretrained(str(base_dir), dtype=torch.float32).eval()
    base_nll = nll_per_document(model, tokenizer, documents)
    peft_model: Any = PeftModel.from_pretrained(model, str(args.adapter)).eval()
    modules = lora_modules(peft_model)
    originals = {name: (m.lora_A["default"].weight.detach().clone(), m.lora_B["default"].weight.detach().clone())
                 for name, m in modules.items()}
    rows = []
    for label in args.parts:
        started = time.perf_counter()
        apply_part(modules, originals, Part.parse(label))
        scores = nll_per_document(peft_model, tokenizer, documents)
        change, low, high = paired_change(base_nll, scores)
        exact = teacher_forced_exact_match_of(peft_model, tokenizer, config)
        row = {"part": label, "exact_match_tf": exact, "general_change_pct": round(100 * change, 2),
               "ci95_pct": [round(100 * low, 2), round(100 * high, 2)],
               "seconds": round(time.perf_counter() - started, 1)}
        rows.append(row)
        print(json.dumps(row), flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1) + "\n")


if __name__ == "__main__":
    main()
