"""The judge's chat prompt: a rubric's template rendered over an item, in the sandbox.

Rendering goes through :func:`evalkit.prompting.render_template`, the one sandboxed
jinja2 environment evalkit renders shared files with: a template that reaches for
``__class__``, ``__globals__`` and the like fails with a DataError naming the rubric,
and rubric loading already refused ``include``/``import``/``extends``.
"""

from __future__ import annotations

import json
from typing import Any

from evalkit.judges.rubric import SCALE, Rubric
from evalkit.prompting import Message, render_template

PAIRWISE_CHOICES: tuple[str, ...] = ("A", "B", "tie")


def criteria_text(rubric: Rubric) -> str:
    """Return the criteria and what each score level means, as the judge reads them."""
    blocks = []
    for criterion in rubric.criteria:
        levels = "\n".join(f"  {level} = {text.strip()}" for level, text in criterion.levels.items())
        blocks.append(f"{criterion.name}: {criterion.description.strip()}\n{levels}")
    return "\n\n".join(blocks)


def output_format_text(rubric: Rubric) -> str:
    """Return the instruction saying which JSON object the judge must answer with."""
    # Scores come before the reasoning so that a local judge reads score probabilities
    # right after the prompt, and a truncated reply still holds its scores.
    fields = ", ".join(f'"{name}": <{SCALE[0]}-{SCALE[-1]}>' for name in rubric.criterion_names)
    return (
        f"Answer with only this JSON object, each score an integer from {SCALE[0]} to {SCALE[-1]}:\n"
        f'{{{fields}, "reasoning": "<one or two sentences>"}}'
    )


def pairwise_format_text() -> str:
    """Return the instruction for a pairwise verdict."""
    return (
        'Answer with only this JSON object: {"winner": "A" | "B" | "tie", '
        '"reasoning": "<one or two sentences>"}'
    )


def judgment_schema(rubric: Rubric) -> dict[str, Any]:
    """Return the JSON schema of a pointwise judgment (for APIs with structured output)."""
    properties: dict[str, Any] = {name: {"type": "integer", "enum": list(SCALE)} for name in rubric.criterion_names}
    properties["reasoning"] = {"type": "string", "maxLength": 400}
    return {"type": "object", "properties": properties, "required": list(properties), "additionalProperties": False}


def pairwise_schema() -> dict[str, Any]:
    """Return the JSON schema of a pairwise verdict."""
    properties = {"winner": {"type": "string", "enum": list(PAIRWISE_CHOICES)},
                  "reasoning": {"type": "string", "maxLength": 400}}
    return {"type": "object", "properties": properties, "required": list(properties), "additionalProperties": False}


def _render(rubric: Rubric, template: str, context: dict[str, Any], where: str) -> str:
    full = {"criteria": criteria_text(rubric), **context}
    return render_template(template, full, f"{rubric.source}: {where}")


def pointwise_messages(
    rubric: Rubric, fields: dict[str, Any], prediction: str, reference: str, where: str = "item"
) -> list[Message]:
    """Return the chat messages asking the judge to score one prediction.

    Args:
        rubric: the rubric.
        fields: the item's fields.
        prediction: the candidate's output.
        reference: the reference answer.
        where: the item's description for error messages.

    Raises:
        DataError: the template needs a field the item lacks, or breaks the sandbox.
    """
    output_format = output_format_text(rubric)
    messages: list[Message] = [{"role": "system", "content": rubric.system.strip()}]
    for number, example in enumerate(rubric.examples, start=1):
        context = {"item": example.item, "prediction": example.prediction, "reference": example.reference,
                   "output_format": output_format}
        shown = _render(rubric, rubric.template, context, f"examples[{number - 1}]")
        messages.append({"role": "user", "content": shown})
        answer = {**example.scores, "reasoning": example.reasoning}
        messages.append({"role": "assistant", "content": json.dumps(answer)})
    context = {"item": fields, "prediction": prediction, "reference": reference, "output_format": output_format}
    messages.append({"role": "user", "content": _render(rubric, rubric.template, context, where)})
    return messages


def pairwise_messages(
    rubric: Rubric, fields: dict[str, Any], first: str, second: str, reference: str, where: str = "item"
) -> list[Message]:
    """Return the chat messages asking the judge which of two predictions is better.

    ``first`` is shown as response A and ``second`` as response B.

    Raises:
        DataError: the template needs a field the item lacks, or breaks the sandbox.
    """
    context = {"item": fields, "prediction_a": first, "prediction_b": second, "reference": reference,
               "output_format": pairwise_format_text()}
    return [
        {"role": "system", "content": rubric.system.strip()},
        {"role": "user", "content": _render(rubric, rubric.pairwise_template, context, f"{where} (pairwise)")},
    ]
