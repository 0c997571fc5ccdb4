"""Turn an item into chat messages: the one prompt path shared by evaluation and training.

Evaluation renders the prompt and lets the model complete it; training renders the
same prompt and trains on the expected answer as the completion. Both go through
:class:`PromptTemplate`, so the two can never drift apart.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import jinja2
from jinja2.sandbox import SandboxedEnvironment

from evalkit.config import CandidateConfig, SuiteConfig
from evalkit.data.items import Item
from evalkit.digest import json_digest
from evalkit.errors import DataError

Message = dict[str, str]

# One sandboxed environment for every prompt template: templates come from files
# people share, so they must not reach Python internals.
_ENV = SandboxedEnvironment(undefined=jinja2.StrictUndefined, autoescape=False)


def render_template(template: str, fields: dict[str, Any], where: str) -> str:
    """Render a jinja2 template over an item's fields in the sandbox.

    Args:
        template: the template text.
        fields: the item's fields.
        where: a description of the item (file and line) for error messages.

    Raises:
        DataError: the template uses a field the item lacks, or fails to render.
    """
    try:
        return _ENV.from_string(template).render(**fields).strip()
    except jinja2.UndefinedError as exc:
        raise DataError(
            f"{where}: the prompt template needs {exc.message}; add the field or fix the template"
        ) from None
    except jinja2.TemplateError as exc:
        raise DataError(f"{where}: the prompt template failed to render: {exc}") from None


@dataclass(frozen=True)
class PromptTemplate:
    """A resolved prompt: templates plus the few-shot examples to show before the item.

    Attributes:
        system: the system message template, or None.
        user: the user message template.
        expected: the template of the reference answer.
        shots: the fields of each few-shot example, in order.
    """

    system: str | None
    user: str
    expected: str
    shots: tuple[dict[str, Any], ...] = field(default=())

    def messages(self, fields: dict[str, Any], where: str = "item") -> list[Message]:
        """Return the chat messages that ask for this item's answer."""
        messages: list[Message] = []
        if self.system:
            messages.append({"role": "system", "content": render_template(self.system, fields, where)})
        for number, shot in enumerate(self.shots, start=1):
            shot_where = f"few-shot example {number}"
            messages.append({"role": "user", "content": render_template(self.user, shot, shot_where)})
            messages.append(
                {"role": "assistant", "content": render_template(self.expected, shot, shot_where)}
            )
        messages.append({"role": "user", "content": render_template(self.user, fields, where)})
        return messages

    def expected_output(self, fields: dict[str, Any], where: str = "item") -> str:
        """Return the reference answer for this item."""
        return render_template(self.expected, fields, where)


def choose_few_shot(
    train_items: Sequence[Item], count: int, exclude_texts: set[str], seed: int = 0
) -> tuple[dict[str, Any], ...]:
    """Pick ``count`` training examples, deterministically, none equal to an eval item.

    Args:
        train_items: the training data.
        count: how many examples.
        exclude_texts: JSON dumps of eval items' fields; an example equal to one is skipped.
        seed: the sampling seed.
    """
    import json

    pool = [item.fields for item in train_items if json.dumps(item.fields, sort_keys=True) not in exclude_texts]
    if count > len(pool):
        dropped = len(train_items) - len(pool)
        raise DataError(
            f"few_shot asks for {count} examples but the training data has {len(pool)} usable "
            f"({dropped} dropped as identical to eval items); lower few_shot or add training data"
        )
    rng = random.Random(seed)
    return tuple(rng.sample(pool, count))


def prompt_for_candidate(
    suite: SuiteConfig,
    candidate: CandidateConfig,
    train_items: Sequence[Item] = (),
    eval_items: Sequence[Item] = (),
) -> PromptTemplate:
    """Resolve the suite prompt with the candidate's override and its few-shot examples."""
    override = candidate.prompt
    system = suite.prompt.system
    user = suite.prompt.user
    few_shot = suite.prompt.few_shot
    if override is not None:
        system = override.system if override.system is not None else system
        user = override.user if override.user is not None else user
        few_shot = override.few_shot if override.few_shot is not None else few_shot
    shots: tuple[dict[str, Any], ...] = ()
    if few_shot:
        import json

        excluded = {json.dumps(item.fields, sort_keys=True) for item in eval_items}
        shots = choose_few_shot(train_items, few_shot, excluded)
    return PromptTemplate(system=system, user=user, expected=suite.prompt.expected, shots=shots)


def template_hash(template: PromptTemplate) -> str:
    """Return a SHA-256 over a prompt template and its few-shot examples."""
    return json_digest({"system": template.system, "user": template.user, "expected": template.expected,
                        "shots": list(template.shots)})
