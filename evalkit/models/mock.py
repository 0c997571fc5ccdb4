"""The ``mock`` backend: scripted or echoed outputs, no model, no torch.

A real backend like any other (registered as ``mock``), for fast tests and for a dry
run of a suite: every stage after generation (checks, comparison, bars, the store, the
report) runs on its outputs exactly as on a model's. A candidate's ``options`` say
what it answers::

    candidates:
      - name: base
        model: smollm2-135m-instruct
        backend: mock
        options: {echo: expected}          # the item's expected output: every check passes
      - name: lora
        model: smollm2-135m-instruct
        backend: mock
        options:
          outputs: {t1: '{"severity": "low"}', t2: "not json"}   # item id -> output
          # outputs: scripted.jsonl        # or a JSONL file of {"id": ..., "output": ...}
          default: ""                      # items the script leaves out (default: echo)

``echo`` is ``expected`` (the item's expected output) or ``prompt`` (the last user
message). An item that ``outputs`` does not name gets ``default`` when it is set, else
the ``echo`` answer (``expected`` when ``echo`` is not set). A relative ``outputs`` file
is read from the suite file's directory (``ModelVariant.base_dir``). The model is never loaded: ``model:`` only
names the candidate's identity. The generation cache key holds a digest of the script
(:func:`script_identity`), so editing the script regenerates.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from evalkit.errors import ConfigError
from evalkit.files.digest import json_digest
from evalkit.files.input_files import json_objects, refuse_non_regular_file
from evalkit.models.backend import GenerationItem, Message, ModelVariant, ProgressCallback, register_backend
from evalkit.suite.config import GenerationConfig

OPTIONS = ("outputs", "echo", "default")
ECHO_MODES = ("expected", "prompt")


@dataclass(frozen=True)
class Script:
    """A candidate's validated mock options."""

    outputs: Mapping[str, str]
    echo: str
    default: str | None

    def answer(self, item: GenerationItem, conversation: list[Message]) -> str:
        """Return the output for one item."""
        if item.item_id in self.outputs:
            return self.outputs[item.item_id]
        if self.default is not None:
            return self.default
        if self.echo == "prompt":
            users = [m["content"] for m in conversation if m.get("role") == "user"]
            return users[-1] if users else ""
        return item.reference


def load_script(options: Mapping[str, Any], base_dir: Path) -> Script:
    """Validate a mock candidate's options and read its outputs file, if any.

    Raises:
        ConfigError: an unknown option, a bad ``echo``, or an unreadable or malformed outputs file.
    """
    unknown = sorted(set(options) - set(OPTIONS))
    if unknown:
        raise ConfigError(f"backend mock: unknown option(s) {', '.join(unknown)}; allowed: {', '.join(OPTIONS)}")
    echo = options.get("echo", "expected")
    if echo not in ECHO_MODES:
        raise ConfigError(f"backend mock: options.echo must be one of {', '.join(ECHO_MODES)}, not {echo!r}")
    default = options.get("default")
    if default is not None and not isinstance(default, str):
        raise ConfigError("backend mock: options.default must be a string (the output of unscripted items)")
    raw = options.get("outputs", {})
    if isinstance(raw, str):
        outputs = _read_outputs_file(base_dir / raw if not Path(raw).is_absolute() else Path(raw))
    elif isinstance(raw, Mapping) and all(isinstance(v, str) for v in raw.values()):
        outputs = {str(k): v for k, v in raw.items()}
    else:
        raise ConfigError("backend mock: options.outputs must map item ids to output strings, "
                          "or name a JSONL file of {\"id\": ..., \"output\": ...}")
    return Script(outputs=outputs, echo=str(echo), default=default)


def _read_outputs_file(path: Path) -> dict[str, str]:
    # A FIFO here would block the run forever on open: refused before opening.
    refuse_non_regular_file(path, "backend mock: outputs file (options.outputs)", ConfigError)
    outputs: dict[str, str] = {}
    try:
        for number, record in json_objects(path, 'write one {"id", "output"} object per line', ConfigError):
            if not (isinstance(record.get("output"), str) and "id" in record):
                raise ConfigError(f"{path}:{number}: needs \"id\" and a string \"output\"")
            outputs[str(record["id"])] = record["output"]
    except FileNotFoundError:
        raise ConfigError(f"backend mock: outputs file {path} not found; check options.outputs") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"backend mock: outputs file {path} cannot be read as UTF-8 text: {exc}") from None
    return outputs


def script_identity(variant: ModelVariant) -> dict[str, Any]:
    """Return the runtime identity of a mock candidate for the cache key: a digest of its script."""
    script = load_script(variant.options, variant.base_dir or Path.cwd())
    return {"device": "none", "script": json_digest({"outputs": dict(script.outputs), "echo": script.echo,
                                                      "default": script.default})}


@register_backend("mock", identity=script_identity)
class MockBackend:
    """Answers every conversation from a candidate's script (see the module docstring).

    ``takes_items`` tells the runner to pass ``items`` (ids and expected outputs) to
    :meth:`generate`.
    """

    takes_items = True

    def __init__(self) -> None:
        self._scripts: dict[str, Script] = {}

    def generate(
        self,
        variant: ModelVariant,
        conversations: Sequence[list[Message]],
        settings: GenerationConfig,
        on_progress: ProgressCallback | None = None,
        *,
        items: Sequence[GenerationItem] | None = None,
        seeds: Sequence[int] | None = None,
    ) -> list[str]:
        """Return the scripted output of each conversation, in order.

        Raises:
            ConfigError: the options are invalid, or ``items`` was not given (the mock
                answers by item id, so it needs the items alongside the conversations).
        """
        if items is None or len(items) != len(conversations):
            raise ConfigError("backend mock answers by item id: it runs in the local runner only "
                              "(not on a Ray executor); drop `executor:` for mock candidates")
        script = self._script(variant)
        outputs = [script.answer(item, conversation) for item, conversation in zip(items, conversations, strict=True)]
        _report(on_progress, len(outputs))
        return outputs

    def render_prompt(self, variant: ModelVariant, conversation: list[Message]) -> str:
        """Return the conversation as plain ``role: content`` lines (the mock has no chat template)."""
        return "\n".join(f"{m.get('role', '')}: {m.get('content', '')}" for m in conversation)

    def close(self) -> None:
        """Forget the loaded scripts."""
        self._scripts.clear()

    def _script(self, variant: ModelVariant) -> Script:
        base_dir = variant.base_dir or Path.cwd()
        key = json.dumps([dict(variant.options), str(base_dir)], sort_keys=True, default=str)
        if key not in self._scripts:
            self._scripts[key] = load_script(variant.options, base_dir)
        return self._scripts[key]


def _report(on_progress: Callable[[int], None] | None, done: int) -> None:
    if on_progress is not None and done:
        on_progress(done)
