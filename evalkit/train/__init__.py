"""The thin training entrypoint: LoRA/QLoRA SFT and DPO (trl + peft), merge, manifests.

Modules::

    config.py      the train YAML (pydantic), its prompt template and data paths, and the
                   manifest every adapter and merged model carries
    lora.py        base model loading (QLoRA on CUDA only), peft LoraConfig, SFT and DPO with
                   trl, merge_and_unload into a standalone model, saving
    candidates.py  one training run (data lint, leakage, the method, the manifest) and what
                   ``evalkit run`` calls: train or merge stale candidates first

Heavy libraries (torch, transformers, trl, peft) are imported inside functions, so that
importing this package (the CLI's ``--help``, a suite's planning) stays cheap.
"""
