"""The thin training entrypoint: LoRA/QLoRA SFT and DPO (trl + peft), merge, manifests.

Modules, each one piece of the flow::

    config.py      the train YAML (pydantic), its prompt template and its data paths
    reporting.py   the progress protocol the trainers report to (the CLI draws it)
    lora.py        base model loading (QLoRA on CUDA only), peft LoraConfig, saving
    sft.py         supervised fine-tuning with trl's SFTTrainer, completion-only loss
    dpo.py         preference tuning with trl's DPOTrainer, reference = adapter disabled
    pipeline.py    train_adapter(): data lint, leakage (evalkit.data.lint, .leakage), the method, the manifest
    manifest.py    the identity file every adapter and merged model carries
    merge.py       merge_adapter(): merge_and_unload into a standalone model
    candidates.py  what ``evalkit run`` calls: train or merge stale candidates first

Heavy libraries (torch, transformers, trl, peft) are imported inside functions, so that
importing this package (the CLI's ``--help``, a suite's planning) stays cheap.
"""
