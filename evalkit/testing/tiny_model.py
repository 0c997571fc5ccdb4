"""Build a tiny random Llama and its tokenizer on disk, for fast tests and examples.

The model is random, so its outputs are nonsense, but it exercises every code path of
a real model (chat template, padding, generation, adapters, lm-eval) in milliseconds.
Nothing is downloaded: the tokenizer is trained here on a small built-in corpus.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

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
