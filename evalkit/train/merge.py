"""``evalkit merge ADAPTER --out DIR``: fold a LoRA adapter into its base, for serving alone.

The merged model (``merge_and_unload``) is saved in float32 with the base's tokenizer, so
it loads like any Hugging Face model directory, and carries a manifest: the adapter's
(data, config, loss curve) plus the adapter it came from and that adapter's hash, so a
merged model whose adapter was retrained is known to be stale.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

from evalkit.errors import ModelError
from evalkit.files.safe_write import check_replaceable, staged_directory
from evalkit.models.sources import ResolvedModel, adapter_fingerprint, resolve_model
from evalkit.record.environment import evalkit_version, utc_now
from evalkit.train.lora import SilentReporter, TrainingReporter
from evalkit.train.manifests import Manifest, read_manifest, write_manifest


def adapter_base(adapter: Path, manifest: Manifest | None, model: str | None) -> ResolvedModel:
    """Resolve the base an adapter goes onto: ``model`` if given, else the recorded base.

    Raises:
        ModelError: no base is known, it does not resolve, or its fingerprint differs
            from the one the adapter was trained on.
    """
    if model is not None:
        base = resolve_model(model, Path.cwd())
    elif manifest is not None:
        # A shipped adapter records no local path for a named base (the embedded model).
        recorded = Path(manifest.base_path) if manifest.base_path else None
        base = (resolve_model(str(recorded)) if recorded is not None and recorded.is_dir()
                else resolve_model(manifest.base_source))
    else:
        # torch and transformers: loaded only here
        from evalkit.models.hf import adapter_base_model

        name = adapter_base_model(adapter)
        if name is None:
            raise ModelError(f"adapter {adapter}: no manifest and no base recorded; pass --model BASE")
        base = resolve_model(name)
    if manifest is not None and manifest.base_fingerprint != base.fingerprint:
        raise ModelError(
            f"adapter {adapter} was trained on a base with fingerprint {manifest.base_fingerprint[:12]}, but "
            f"'{base.source}' has {base.fingerprint[:12]}; use the base it was trained on (or retrain it)"
        )
    return base


def merge_adapter(
    adapter: Path, out: Path, model: str | None = None, reporter: TrainingReporter | None = None,
    force: bool = False,
) -> Manifest:
    """Merge ``adapter`` into its base and save a standalone model to ``out``.

    Args:
        adapter: a peft adapter directory (ideally with an evalkit manifest).
        out: the merged model's directory; an existing one is replaced only when it is
            empty or evalkit made it (see :mod:`evalkit.files.safe_write`), or with ``force``.
        model: the base model source; default the base recorded in the adapter.
        reporter: receives a note when done; default silent.
        force: replace ``out`` even when evalkit did not make it.

    Returns:
        The merged model's manifest.

    Raises:
        ModelError: the adapter or its base is missing, mismatched or fails to load.
        OutputExists: ``out`` holds files evalkit did not make (checked before loading).
    """
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    reporter = reporter or SilentReporter()
    adapter = adapter.resolve()
    check_replaceable(out.resolve(), force=force)
    if not (adapter / "adapter_config.json").is_file():
        raise ModelError(f"adapter {adapter}: no adapter_config.json there; train it first with `evalkit train`")
    manifest = read_manifest(adapter)
    base = adapter_base(adapter, manifest, model)
    try:
        tokenizer = AutoTokenizer.from_pretrained(str(base.path))
        model_object = AutoModelForCausalLM.from_pretrained(str(base.path), dtype=torch.float32)
        merged = PeftModel.from_pretrained(model_object, str(adapter)).merge_and_unload()
    except (OSError, ValueError, RuntimeError, KeyError) as exc:
        raise ModelError(f"merging {adapter} into '{base.source}' failed: {exc}") from None
    if manifest is None:
        manifest = Manifest(kind="merged", method="unknown", base_source=base.source,
                            base_fingerprint=base.fingerprint, base_path=str(base.path), data_path="",
                            data_sha256="", data_examples=0, config={}, config_fingerprint="", prompt_hash="")
    merged_manifest = dataclasses.replace(
        manifest, kind="merged", adapter_path=str(adapter), adapter_hash=adapter_fingerprint(adapter),
        evalkit_version=evalkit_version(), created_at=utc_now(),
    )
    with staged_directory(out.resolve(), kind="merged model", force=force) as staging:
        merged.save_pretrained(str(staging))
        tokenizer.save_pretrained(str(staging))
        write_manifest(staging, merged_manifest)
    reporter.note(f"saved merged model {out} (from {adapter})")
    return merged_manifest
