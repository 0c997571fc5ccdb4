"""Turn an item into chat messages: the one prompt path shared by evaluation and training.

Evaluation renders the prompt and lets the model complete it; training renders the
same prompt and trains on the expected answer as the completion. Both go through
:class:`PromptTemplate`, so the two can never drift apart.
"""

from __future__ import annotations

import functools
import random
import re
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import jinja2
from jinja2 import nodes
from jinja2.runtime import Context
from jinja2.sandbox import SandboxedEnvironment
from jinja2.utils import Namespace

from evalkit.data.items import Item
from evalkit.errors import DataError
from evalkit.files.home import json_digest
from evalkit.suite.config import CandidateConfig, SuiteConfig

Message = dict[str, str]

TEMPLATE_SECONDS = 2.0
"""Wall-clock limit of one render: a template is a few lines of text, never a computation."""
MAX_RENDERED_CHARS = 1_000_000
"""The longest text one render may produce, and the longest string or list it may build on the way."""
MAX_LOOP_STEPS = 100_000
"""Loop iterations one render may take, over every ``for`` in it together (nested loops multiply)."""
MAX_WIDTH = 10_000
"""The largest width, count or padding a filter or string method is asked for (``center``, ``indent``...)."""
_WIDE_FORMAT = re.compile(r"%[-#0 +]*(\d{5,}|\*)|\.\d{5,}|\{[^{}]*:[^{}]*\d{5,}[^{}]*\}")
_WIDTH_FILTERS = ("center", "indent", "wordwrap", "truncate", "batch", "slice")
_WIDTH_METHODS = ("ljust", "rjust", "center", "zfill", "expandtabs")


class TemplateLimit(Exception):
    """A render passed one of the sandbox's limits; the message says which."""


class _Budget(threading.local):
    """The running render's deadline and loop steps (per thread: renders may run in threads)."""

    deadline: float = float("inf")
    steps: int = 0


_BUDGET = _Budget()


def _spend(steps: int = 0) -> None:
    _BUDGET.steps += steps
    if _BUDGET.steps > MAX_LOOP_STEPS:
        raise TemplateLimit(f"its loops ran more than {MAX_LOOP_STEPS:,} steps")
    if time.monotonic() > _BUDGET.deadline:
        raise TemplateLimit(f"it ran longer than {TEMPLATE_SECONDS:g} s")


def _check_size(value: Any, what: str) -> Any:
    if isinstance(value, str | list | tuple | bytes) and len(value) > MAX_RENDERED_CHARS:
        raise TemplateLimit(f"{what} made a value of {len(value):,} characters or entries, "
                            f"over the limit of {MAX_RENDERED_CHARS:,}")
    return value


def _sized(value: Any) -> int | None:
    return len(value) if isinstance(value, str | list | tuple | bytes) else None


def _check_widths(name: str, args: Sequence[Any], kwargs: Mapping[str, Any]) -> None:
    for value in (*args, *kwargs.values()):
        if isinstance(value, int) and not isinstance(value, bool) and abs(value) > MAX_WIDTH:
            raise TemplateLimit(f"{name}({value}) asks for more than {MAX_WIDTH:,}")


def _check_format(name: str, text: Any) -> None:
    if isinstance(text, str) and _WIDE_FORMAT.search(text):
        raise TemplateLimit(f"{name} uses a width or precision of 5 digits or more (or '*')")


def _guard_filter(name: str, function: Callable[..., Any]) -> Callable[..., Any]:
    """Wrap a built-in filter: deadline, width arguments and the size of what it returns."""

    @functools.wraps(function)  # keeps jinja's pass_context/pass_environment marks
    def guarded(*args: Any, **kwargs: Any) -> Any:
        _spend()
        if name in _WIDTH_FILTERS:
            _check_widths(f"filter {name}", [a for a in args if not isinstance(a, jinja2.runtime.Context)], kwargs)
        if name == "format" and args:
            _check_format("filter format", args[0])
        return _check_size(function(*args, **kwargs), f"filter {name}")

    return guarded


class _BoundedNamespace(Namespace):
    """``namespace()`` whose attributes may not grow past the size limit (doubling in a loop)."""

    def __setitem__(self, name: str, value: Any) -> None:
        super().__setitem__(name, _check_size(value, f"namespace attribute {name}"))


def _bounded_range(*args: int) -> range:
    values = range(*args)
    if len(values) > MAX_LOOP_STEPS:
        raise TemplateLimit(f"range({', '.join(map(str, args))}) has {len(values):,} values, "
                            f"over the limit of {MAX_LOOP_STEPS:,}")
    return values


def _bounded_iteration(values: Any) -> Iterator[Any]:
    """Every ``for`` loop iterates through this: it counts steps and watches the clock."""
    for value in values:
        _spend(1)
        yield value


class _BoundedSandbox(SandboxedEnvironment):
    """jinja2's sandbox plus limits on time, loop steps, and the size of every value a template makes.

    The sandbox keeps templates from Python internals; it does not stop ``range(10**9)``,
    ``'x' * 10**9``, nested loops or a string doubled in a loop. Here: every ``for``
    iterates through a counter (the parsed tree is rewritten so), ``*``, ``**``, ``+``
    and ``%`` are checked before they run, calls (macros, methods) and filters check the
    clock and their arguments' sizes, and :func:`render_template` caps the output.
    """

    intercepted_binops = frozenset({"*", "**", "+", "%"})

    def _parse(self, source: str, name: str | None, filename: str | None) -> nodes.Template:
        tree = super()._parse(source, name, filename)
        for loop in tree.find_all(nodes.For):
            loop.iter = nodes.Filter(loop.iter, "_evalkit_bounded_iteration", [], [], None, None,
                                     lineno=loop.iter.lineno)
        return tree

    def call_binop(self, context: Context, operator: str, left: Any, right: Any) -> Any:
        """Run ``left operator right`` unless its result would be too large to hold."""
        _spend()
        if operator == "*":
            for seq, count in ((left, right), (right, left)):
                size = _sized(seq)
                if size is not None and isinstance(count, int) and size * count > MAX_RENDERED_CHARS:
                    raise TemplateLimit(f"'*' would make {size * count:,} characters or entries, "
                                        f"over the limit of {MAX_RENDERED_CHARS:,}")
        elif operator == "**":
            if isinstance(left, int) and isinstance(right, int) and abs(left) > 1 and \
                    right * max(abs(left).bit_length(), 1) > 4096:
                raise TemplateLimit("'**' would make a number of more than 4,096 bits")
        elif operator == "+":
            sizes = (_sized(left), _sized(right))
            if sizes[0] is not None and sizes[1] is not None and sizes[0] + sizes[1] > MAX_RENDERED_CHARS:
                raise TemplateLimit(f"'+' would make {sizes[0] + sizes[1]:,} characters or entries, "
                                    f"over the limit of {MAX_RENDERED_CHARS:,}")
        elif operator == "%":
            _check_format("'%' formatting", left)
        return super().call_binop(context, operator, left, right)

    def call(__self, __context: Context, __obj: Any, *args: Any, **kwargs: Any) -> Any:
        """Call from a template (a macro, a method, a global) with the clock and argument sizes checked."""
        _spend()
        for value in (*args, *kwargs.values()):
            _check_size(value, "a call's argument")
        name = getattr(__obj, "__name__", "")
        # The sandbox hands str.format out wrapped; the string is the wrapped method's __self__.
        owner = getattr(getattr(__obj, "__wrapped__", __obj), "__self__", None)
        if isinstance(owner, str):
            if name in _WIDTH_METHODS:
                _check_widths(f"str.{name}", args, kwargs)
            elif name in ("format", "format_map"):
                _check_format(f"str.{name}", owner)
        return _check_size(super().call(__context, __obj, *args, **kwargs), f"calling {name or 'a function'}")


def _bounded_environment() -> _BoundedSandbox:
    env = _BoundedSandbox(undefined=jinja2.StrictUndefined, autoescape=False)
    env.filters = {name: _guard_filter(name, function) for name, function in env.filters.items()}
    env.filters["_evalkit_bounded_iteration"] = _bounded_iteration
    env.globals["range"] = _bounded_range
    env.globals["namespace"] = _BoundedNamespace
    env.globals.pop("lipsum", None)  # lipsum(n=10**9) makes text of any size
    return env


# One sandboxed environment for every prompt template: templates come from files
# people share, so they must not reach Python internals, nor run without bound.
_ENV = _bounded_environment()


@functools.lru_cache(maxsize=256)
def _compiled(template: str) -> jinja2.Template:
    # A template is rendered once per item: compile it once.
    return _ENV.from_string(template)


def render_template(template: str, fields: dict[str, Any], where: str, name: str = "") -> str:
    """Render a jinja2 template over an item's fields in the bounded sandbox.

    A render may take at most :data:`TEMPLATE_SECONDS`, :data:`MAX_LOOP_STEPS` loop steps
    and produce at most :data:`MAX_RENDERED_CHARS` characters; past any limit it stops
    with an error naming the template.

    Args:
        template: the template text.
        fields: the item's fields.
        where: a description of the item (file and line) for error messages.
        name: which template it is (``suites/x.yaml: prompt.user``), for error messages.

    Raises:
        DataError: the template uses a field the item lacks, fails to render, or passes a
            limit of the sandbox.
    """
    label = f"the prompt template ({name})" if name else "the prompt template"
    _BUDGET.deadline = time.monotonic() + TEMPLATE_SECONDS
    _BUDGET.steps = 0
    try:
        parts: list[str] = []
        length = 0
        for chunk in _compiled(template).generate(**fields):
            length += len(chunk)
            if length > MAX_RENDERED_CHARS:
                raise TemplateLimit(f"its output passed {MAX_RENDERED_CHARS:,} characters")
            _spend()
            parts.append(chunk)
        return "".join(parts).strip()
    except TemplateLimit as exc:
        raise DataError(f"{where}: {label} stopped: {exc}; a prompt template must render a prompt, "
                        "not compute: simplify it") from None
    except (OverflowError, MemoryError, RecursionError) as exc:
        raise DataError(f"{where}: {label} stopped: {exc.__class__.__name__} ({exc}); "
                        "a prompt template must render a prompt, not compute: simplify it") from None
    except jinja2.UndefinedError as exc:
        raise DataError(
            f"{where}: {label} needs {exc.message}; add the field or fix the template"
        ) from None
    except jinja2.TemplateError as exc:
        raise DataError(f"{where}: {label} failed to render: {exc}") from None
    finally:
        _BUDGET.deadline = float("inf")


@dataclass(frozen=True)
class PromptTemplate:
    """A resolved prompt: templates plus the few-shot examples to show before the item.

    Attributes:
        system: the system message template, or None.
        user: the user message template.
        expected: the template of the reference answer.
        shots: the fields of each few-shot example, in order.
        names: what error messages call the system, user and expected templates (the
            suite file and field they come from); not part of the template's identity.
    """

    system: str | None
    user: str
    expected: str
    shots: tuple[dict[str, Any], ...] = field(default=())
    names: tuple[str, str, str] = field(default=("prompt.system", "prompt.user", "prompt.expected"),
                                        compare=False)

    def messages(self, fields: dict[str, Any], where: str = "item") -> list[Message]:
        """Return the chat messages that ask for this item's answer."""
        system_name, user_name, expected_name = self.names
        messages: list[Message] = []
        if self.system:
            messages.append({"role": "system", "content": render_template(self.system, fields, where, system_name)})
        for number, shot in enumerate(self.shots, start=1):
            shot_where = f"few-shot example {number}"
            messages.append({"role": "user", "content": render_template(self.user, shot, shot_where, user_name)})
            messages.append(
                {"role": "assistant", "content": render_template(self.expected, shot, shot_where, expected_name)}
            )
        messages.append({"role": "user", "content": render_template(self.user, fields, where, user_name)})
        return messages

    def expected_output(self, fields: dict[str, Any], where: str = "item") -> str:
        """Return the reference answer for this item."""
        return render_template(self.expected, fields, where, self.names[2])


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
    suite_field = f"{suite.source}: prompt."
    system_name, user_name = f"{suite_field}system", f"{suite_field}user"
    if override is not None:
        candidate_field = f"{suite.source}: candidate '{candidate.name}' prompt."
        if override.system is not None:
            system, system_name = override.system, f"{candidate_field}system"
        if override.user is not None:
            user, user_name = override.user, f"{candidate_field}user"
        few_shot = override.few_shot if override.few_shot is not None else few_shot
    shots: tuple[dict[str, Any], ...] = ()
    if few_shot:
        import json

        excluded = {json.dumps(item.fields, sort_keys=True) for item in eval_items}
        shots = choose_few_shot(train_items, few_shot, excluded)
    return PromptTemplate(system=system, user=user, expected=suite.prompt.expected, shots=shots,
                          names=(system_name, user_name, f"{suite_field}expected"))


def template_hash(template: PromptTemplate) -> str:
    """Return a SHA-256 over a prompt template and its few-shot examples."""
    return json_digest({"system": template.system, "user": template.user, "expected": template.expected,
                        "shots": list(template.shots)})
