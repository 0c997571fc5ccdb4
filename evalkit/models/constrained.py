"""Constrained decoding as a control: outputs forced to the suite's JSON schema.

A candidate with ``constrain: json_schema`` generates under the schema of the suite's
``json_schema`` check. Its outputs are then valid by construction, so what it scores
beyond the unconstrained base on the *labels* (exact match, field accuracy) is what a
format fix alone buys; what a fine-tune gains beyond the constrained base is what
fine-tuning taught about the task ("did fine-tuning teach the labels, or only the
format?").

The HF backend masks logits with xgrammar's grammar matcher (the library vLLM itself
uses for structured outputs), one matcher per sequence; the vLLM backend passes the
schema as ``StructuredOutputsParams(json=...)``. Whitespace between JSON tokens is
not free (``any_whitespace=False``), so a model cannot spend its token budget on
spaces and be cut off mid-object.
"""

from __future__ import annotations

import json
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from evalkit.errors import ConfigError

if TYPE_CHECKING:
    from evalkit.suite.config import CandidateConfig, SuiteConfig


def candidate_constraint(suite: SuiteConfig, config: CandidateConfig) -> str | None:
    """Return the JSON schema text a candidate's outputs are forced to, or None.

    Raises:
        ConfigError: the schema file is missing or not JSON (names the file).
    """
    if config.constrain != "json_schema":
        return None
    spec = next(check for check in suite.checks if check.name == "json_schema")
    relative = spec.options.get("path") or spec.options.get("value")
    path = suite.resolve(str(relative))
    try:
        schema = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"{suite.source}: candidate '{config.name}': schema {path}: {exc.strerror}; "
                          "check the json_schema check's path") from None
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{path}:{exc.lineno}: not valid JSON ({exc.msg}); fix the schema file") from None
    # Property order kept: the grammar writes keys in it, as the reference answers do.
    return json.dumps(schema)


@lru_cache(maxsize=8)
def _compiled(tokenizer_key: int, tokenizer: Any, vocab_size: int, schema: str) -> Any:
    import xgrammar

    info = xgrammar.TokenizerInfo.from_huggingface(tokenizer, vocab_size=vocab_size)
    return xgrammar.GrammarCompiler(info).compile_json_schema(schema, any_whitespace=False)


def json_schema_processor(tokenizer: Any, vocab_size: int, schema: str) -> Any:
    """Return a fresh HF logits processor forcing each sequence of one ``generate`` call to ``schema``.

    Args:
        tokenizer: the model's HF tokenizer.
        vocab_size: the model's logits width (may exceed the tokenizer's vocabulary).
        schema: the JSON schema text.
    """
    from xgrammar.contrib.hf import LogitsProcessor

    # A processor serves one generate() call; the compiled grammar is reused.
    return LogitsProcessor(_compiled(id(tokenizer), tokenizer, vocab_size, schema))
