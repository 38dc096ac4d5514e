"""The bounds of a template render: ``Limits``, the per-render budget, bounded filters.

Place in the flow: ``responders.sandbox`` builds its environment from what is here (the bounded
``range``, filters whose output size is checked before they run, the counted ``finalize``) and
calls ``step``/``spend``/``check_*`` from the hooks of compiled templates; ``render_compiled``
opens a budget per render with ``budgeted``. See ``responders.sandbox`` for what is bounded
and why. Outside a render (Jinja folds constants while compiling) nothing is counted.
"""

from __future__ import annotations

import contextlib
import functools
import time
from collections.abc import Callable, Iterator
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

from jinja2.filters import (
    do_batch,
    do_center,
    do_indent,
    do_join,
    do_replace,
    do_slice,
    do_wordwrap,
)
from jinja2.utils import pass_environment, pass_eval_context


class LimitExceeded(Exception):
    """Raised inside a render when a bound is passed; becomes a TemplateLimitError."""


# --- the bounds ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Limits:
    """Bounds of one render; ``responders.sandbox`` explains what each one counts."""

    template_chars: int = 100_000  # source of one template
    output_chars: int = 500_000  # what one render returns
    string_chars: int = 1_000_000  # any single value one operation produces
    work_chars: int = 10_000_000  # everything produced during one render, added up
    steps: int = 100_000  # loop iterations plus macro/call-block runs
    range_items: int = 10_000  # items one range() yields
    seconds: float = 1.0  # wall time of one render
    power_bits: int = 4096  # size of an integer ``**`` result


DEFAULT_LIMITS = Limits()


class _Budget:
    """What one render has used so far; reached through a context variable."""

    __slots__ = ("deadline", "limits", "steps", "work")

    def __init__(self, limits: Limits) -> None:
        self.limits = limits
        self.deadline = time.monotonic() + limits.seconds
        self.steps = 0
        self.work = 0

    def step(self, cost: int) -> None:
        self.steps += 1
        if self.steps > self.limits.steps:
            raise LimitExceeded(f"more than {self.limits.steps} loop iterations or macro calls")
        self.spend(cost)

    def spend(self, size: int) -> None:
        self.work += size
        if self.work > self.limits.work_chars:
            raise LimitExceeded(f"produces more than {self.limits.work_chars} characters in all")
        if time.monotonic() > self.deadline:
            raise LimitExceeded(f"takes longer than {self.limits.seconds} s")


# A context variable rather than state on the environment: environments are shared by every
# render (threads and tasks alike), and a template cannot see or rebind it.
_budget: ContextVar[_Budget | None] = ContextVar("pytrs_template_budget", default=None)


@contextlib.contextmanager
def budgeted(limits: Limits) -> Iterator[_Budget]:
    """A fresh budget for the render that runs inside the block."""
    budget = _Budget(limits)
    token = _budget.set(budget)
    try:
        yield budget
    finally:
        _budget.reset(token)


def step(cost: int) -> None:
    """One loop iteration or macro run, whose literal text is `cost` characters."""
    budget = _budget.get()
    if budget is not None:
        budget.step(cost)


def _limits() -> Limits:
    budget = _budget.get()
    return budget.limits if budget is not None else DEFAULT_LIMITS


def spend(value: object) -> None:
    # Outside a render (Jinja folds constants while compiling) nothing is counted.
    budget = _budget.get()
    if budget is not None and isinstance(value, str | list | tuple | dict):
        budget.spend(len(value))


def check_size(size: int, what: str = "a value") -> None:
    limit = _limits().string_chars
    if size > limit:
        raise LimitExceeded(f"{what} of more than {limit} characters")


def _check_count(count: object, what: str) -> None:
    limit = _limits().range_items
    if isinstance(count, int) and count > limit:
        raise LimitExceeded(f"{what} of more than {limit} items")


def sized(value: object) -> int:
    return len(value) if isinstance(value, str | list | tuple | dict) else 0


# --- globals and filters ---------------------------------------------------------------------


def bounded_range(*args: int) -> range:
    """``range`` for templates: at most ``Limits.range_items`` items."""
    items = range(*args)
    limit = _limits().range_items
    try:
        too_many = len(items) > limit
    except OverflowError:  # more items than fit in a machine word
        too_many = True
    if too_many:
        raise LimitExceeded(f"range() of more than {limit} items")
    return items


def counted(func: Callable[..., Any]) -> Callable[..., Any]:
    """`func` with its result counted as work; Jinja's pass_* markers are kept (``wraps``
    copies ``__dict__``)."""

    @functools.wraps(func)
    def counted(*args: Any, **kwargs: Any) -> Any:
        result = func(*args, **kwargs)
        spend(result)
        return result

    return counted


def _center(value: str, width: int = 80) -> str:
    check_size(width if isinstance(width, int) else 0, "center()")
    return do_center(value, width)


def _indent(s: str, width: int | str = 4, first: bool = False, blank: bool = False) -> str:
    text = str(s)
    step = len(width) if isinstance(width, str) else int(width)
    check_size(len(text) + (text.count("\n") + 1) * max(step, 0), "indent()")
    return do_indent(s, width, first, blank)


@pass_environment
def _wordwrap(environment: Any, s: str, width: int = 79, *args: Any, **kwargs: Any) -> str:
    text = str(s)
    wrap = kwargs.get("wrapstring") or (args[1] if len(args) > 1 else None)
    breaks = len(text) // max(int(width), 1) + 1
    check_size(len(text) + breaks * len(wrap or environment.newline_sequence), "wordwrap()")
    return do_wordwrap(environment, s, width, *args, **kwargs)


def _batch(value: Any, linecount: int, fill_with: Any = None) -> Iterator[list[Any]]:
    _check_count(linecount, "batch()")
    return do_batch(value, linecount, fill_with)


def _slice(value: Any, slices: int, fill_with: Any = None) -> Iterator[list[Any]]:
    _check_count(slices, "slice()")
    return do_slice(value, slices, fill_with)


@pass_eval_context
def _join(eval_ctx: Any, value: Any, d: str = "", attribute: Any = None) -> str:
    items = list(value)
    if attribute is not None:
        getter = eval_ctx.environment.getattr
        items = [getter(item, attribute) for item in items]
    size = sum(len(str(item)) for item in items) + len(str(d)) * max(len(items) - 1, 0)
    check_size(size, "join()")
    return do_join(eval_ctx, items, d)


@pass_eval_context
def _replace(eval_ctx: Any, s: str, old: str, new: str, count: int | None = None) -> str:
    text, old_text, new_text = str(s), str(old), str(new)
    hits = text.count(old_text) if old_text else len(text) + 1
    if count is not None and count >= 0:
        hits = min(hits, count)
    check_size(len(text) + hits * max(len(new_text) - len(old_text), 0), "replace()")
    return do_replace(eval_ctx, s, old, new, count)


@pass_environment
def _sum(environment: Any, iterable: Any, attribute: Any = None, start: Any = 0) -> Any:
    # Summing lists would concatenate them outside any bound; templates only add numbers.
    items = list(iterable)
    if attribute is not None:
        items = [environment.getattr(item, attribute) for item in items]
    if not all(isinstance(x, int | float) for x in (*items, start)):
        raise TypeError("sum() adds numbers only")
    return sum(items, start)


BOUNDED_FILTERS: dict[str, Callable[..., Any]] = {
    "center": _center, "indent": _indent, "wordwrap": _wordwrap, "batch": _batch,
    "slice": _slice, "join": _join, "replace": _replace, "sum": _sum,
}  # fmt: skip
REMOVED_FILTERS = frozenset({"format"})  # printf-style formatting, unbounded widths
REMOVED_GLOBALS = frozenset({"lipsum"})  # lipsum(n) writes n paragraphs
GROWING_STR_METHODS = frozenset(
    {"center", "ljust", "rjust", "zfill", "expandtabs", "join", "replace", "format", "format_map"}
)


def finalize(value: Any) -> Any:
    # Called by Jinja on the value of every {{ … }} before it is written (or at compile time
    # for constants): output counts as work, and this is also where the deadline is checked.
    budget = _budget.get()
    if budget is not None:
        budget.spend(len(value) if isinstance(value, str) else len(str(value)))
    return value


def check_repeat(left: Any, right: Any) -> None:
    for seq, times in ((left, right), (right, left)):
        if isinstance(seq, str | list | tuple) and isinstance(times, int):
            check_size(len(seq) * max(times, 0), "a * result")


def check_power(left: Any, right: Any) -> None:
    if isinstance(left, int) and isinstance(right, int) and right > 0 and abs(left) > 1:
        limit = _limits().power_bits
        if abs(left).bit_length() * right > limit:
            raise LimitExceeded(f"an integer power beyond {limit} bits")
