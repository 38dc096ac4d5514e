"""The sandbox auto-response templates run in: Jinja2's immutable sandbox plus bounds on work.

Place in the flow: ``responders.templates`` compiles every template here when it is saved
(provisioning from ``[[auto_responses]]``, ``pytrs responses import``) and renders it here when
the postmaster answers a mail. Template authors are admins, but not necessarily admins of the
machine: a template must neither reach Python internals nor stall or exhaust the worker that
renders it. Mail content only ever reaches a template as data, never as template source.

What applies to every render (numbers in ``Limits``):

* Jinja2's ``ImmutableSandboxedEnvironment``: no attribute that starts with "_" or is internal
  to functions, frames or code; no method that changes a list, dict or set; ``str.format`` is
  sandboxed. On top of it we refuse the ``str`` methods that can multiply a string (``center``,
  ``ljust``, ``rjust``, ``zfill``, ``expandtabs``, ``join``, ``replace``, ``format``,
  ``format_map``: the filters of the same names are bounded instead) and printf-style ``%`` on
  strings; ``lipsum`` and the ``format`` filter are gone; ``include``/``extends``/``import`` are
  refused when compiling (a template is self-contained).
* ``range()`` yields at most ``range_items`` items.
* Steps: every loop iteration (and every item a loop's ``if`` clause tests) and every macro or
  ``{% call %}`` body run is a step; at most ``steps`` per render.
* Work: what output, ``~``, ``+``, ``*``, filters, method calls and slices produce is counted
  in characters (or items); at most ``work_chars`` per render. One operation that would produce
  more than ``string_chars`` is refused before it runs; integer powers beyond 4096 bits too.
* Time: a deadline of ``seconds`` of wall time, checked at every step and every output.

So every step is bounded and so is their number and their total: a render ends within about
``seconds`` (plus one bounded operation), holds at most a few ``work_chars`` of memory, and its
output is at most ``output_chars``. Failures are ``TemplateError``s the caller can catch.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping, Sequence
from types import TracebackType
from typing import Any

from jinja2 import StrictUndefined, Template, nodes
from jinja2.compiler import CodeGenerator, Frame
from jinja2.exceptions import SecurityError, TemplateSyntaxError, UndefinedError
from jinja2.meta import find_undeclared_variables
from jinja2.sandbox import ImmutableSandboxedEnvironment

from pytrs.responders.template_limits import (
    BOUNDED_FILTERS,
    GROWING_STR_METHODS,
    REMOVED_FILTERS,
    REMOVED_GLOBALS,
    LimitExceeded,
    Limits,
    bounded_range,
    budgeted,
    check_power,
    check_repeat,
    check_size,
    counted,
    finalize,
    sized,
    spend,
    step,
)

# --- errors --------------------------------------------------------------------------------


class TemplateError(ValueError):
    """A template cannot be used: ``template`` names it, ``line`` is the line (0 = unknown)."""

    def __init__(self, template: str, reason: str, line: int = 0) -> None:
        where = f"{template}, line {line}" if line else template
        super().__init__(f"template {where}: {reason}")
        self.template = template
        self.reason = reason
        self.line = line


class TemplateCompileError(TemplateError):
    """Raised when a template is saved: syntax, unknown variable or filter, refused tag, or a
    failure when rendered with the sample data."""


class TemplateRenderError(TemplateError):
    """Raised when a compiled template fails at mail time; nothing is sent."""


class TemplateSecurityError(TemplateRenderError):
    """The template tried something the sandbox forbids (internals, unsafe calls)."""


class TemplateLimitError(TemplateRenderError):
    """The template went past a bound of ``Limits`` (steps, work, size, time, nesting)."""


# --- the environment -------------------------------------------------------------------------


class _CodeGenerator(CodeGenerator):
    def visit_Concat(self, node: nodes.Concat, frame: Frame) -> None:
        # `a ~ b` is joined by Jinja without a hook; send it through the environment, which
        # checks the size before joining (a loop that doubles a string would otherwise explode).
        if frame.eval_ctx.volatile:
            join = "(markup_join if context.eval_ctx.volatile else str_join)"
        elif frame.eval_ctx.autoescape:
            join = "markup_join"
        else:
            join = "str_join"
        self.write(f"environment.pytrs_concat({join}, (")
        for arg in node.nodes:
            self.visit(arg, frame)
            self.write(", ")
        self.write("))")


class MailEnvironment(ImmutableSandboxedEnvironment):
    """The immutable sandbox with pytrs's bounds; one for plain text, one for HTML."""

    code_generator_class = _CodeGenerator
    intercepted_binops = frozenset({"+", "*", "**", "%"})

    def __init__(self, *, html: bool) -> None:
        super().__init__(
            autoescape=html, undefined=StrictUndefined, finalize=finalize,
            # Block tags on lines of their own leave no blank lines in plain-text mail.
            trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=True,
            cache_size=0, auto_reload=False,
        )  # fmt: skip
        # truncate(24) gives at most 24 characters, like Znuny's <OTRS_CUSTOMER_SUBJECT[24]>.
        self.policies["truncate.leeway"] = 0
        self.globals["range"] = bounded_range
        for name in REMOVED_GLOBALS:
            self.globals.pop(name, None)
        filters = {n: f for n, f in self.filters.items() if n not in REMOVED_FILTERS}
        filters.update(BOUNDED_FILTERS)
        self.filters = {name: counted(func) for name, func in filters.items()}

    def add_filter(self, name: str, func: Callable[..., Any]) -> None:
        self.filters[name] = counted(func)

    # Hooks of the compiled code (called as environment.<name>).

    def pytrs_tick(self, cost: int = 0) -> bool:
        step(cost)
        return True

    def pytrs_concat(self, join: Callable[[Sequence[Any]], str], pieces: Sequence[Any]) -> str:
        check_size(sum(len(str(piece)) for piece in pieces), "a ~ concatenation")
        result = join(pieces)
        spend(result)
        return result

    # The sandbox's own hooks.

    def call(self, context: Any, obj: Any, /, *args: Any, **kwargs: Any) -> Any:
        name = getattr(obj, "__name__", "")
        if isinstance(getattr(obj, "__self__", None), str) and name in GROWING_STR_METHODS:
            hint = f"; use the {name} filter" if name in BOUNDED_FILTERS else ""
            raise SecurityError(f"str.{name}() is not available in templates{hint}")
        result = super().call(context, obj, *args, **kwargs)
        spend(result)
        return result

    def call_binop(self, context: Any, operator: str, left: Any, right: Any) -> Any:
        if operator == "%" and isinstance(left, str):
            raise SecurityError("printf-style % formatting is not available in templates")
        if operator == "**":
            check_power(left, right)
        elif operator == "*":
            check_repeat(left, right)
        elif operator == "+" and sized(left) and sized(right):
            check_size(sized(left) + sized(right), "a + result")
        result = super().call_binop(context, operator, left, right)
        spend(result)
        return result

    def wrap_str_format(self, value: Any) -> Callable[..., str] | None:
        # The sandbox hands templates a checked str.format; its field widths ("{:>999999999}")
        # are still unbounded, and templates have filters for formatting.
        if super().wrap_str_format(value) is None:
            return None

        def refused(*args: Any, **kwargs: Any) -> str:
            raise SecurityError(f"str.{value.__name__}() is not available in templates")

        return refused

    def getitem(self, obj: Any, argument: Any) -> Any:
        result = super().getitem(obj, argument)
        if isinstance(argument, slice):
            spend(result)
        return result


# --- compiling ---------------------------------------------------------------------------------

_REFUSED_TAGS: dict[type[nodes.Node], str] = {
    nodes.Extends: "extends", nodes.Include: "include", nodes.Import: "import",
    nodes.FromImport: "from … import",
}  # fmt: skip


def compile_source(
    env: MailEnvironment, name: str, source: str, known: Collection[str], limits: Limits
) -> Template:
    """`source` compiled in `env`, with the step counters put in.

    Raises TemplateCompileError naming `name` and the line: syntax, unknown filter or test, a
    refused tag, or a variable neither in `known` nor a global.
    """
    if len(source) > limits.template_chars:
        raise TemplateCompileError(name, f"longer than {limits.template_chars} characters")
    try:
        ast = env.parse(source, name=name, filename=name)
        _refuse_tags(ast, name)
        _check_names(ast, name, {*known, *env.globals})
        _instrument(ast)
        code = env.compile(ast, name=name, filename=name)
    except TemplateSyntaxError as exc:
        raise TemplateCompileError(name, exc.message or "syntax error", exc.lineno) from None
    return env.template_class.from_code(env, code, env.make_globals(None))


def _refuse_tags(ast: nodes.Template, name: str) -> None:
    for node in ast.find_all(tuple(_REFUSED_TAGS)):
        tag = _REFUSED_TAGS[type(node)]
        raise TemplateCompileError(name, f"{{% {tag} %}} is not available", node.lineno)


def _check_names(ast: nodes.Template, name: str, known: set[str]) -> None:
    unknown = find_undeclared_variables(ast) - known
    if not unknown:
        return
    first = min((n for n in ast.find_all(nodes.Name) if n.name in unknown), key=lambda n: n.lineno)
    raise TemplateCompileError(
        name, f"unknown variable {first.name!r} (known: {', '.join(sorted(known))})", first.lineno
    )


def _instrument(ast: nodes.Template) -> None:
    """Count a step at the start of each loop iteration (and in a loop's `if` clause) and of
    each macro or call-block body. A step costs the literal text of its body, so text repeated
    by a loop counts as work too."""
    for node in ast.find_all((nodes.For, nodes.Macro, nodes.CallBlock)):
        assert isinstance(node, nodes.For | nodes.Macro | nodes.CallBlock)
        data = (t for s in node.body for t in s.find_all(nodes.TemplateData))
        text = sum(len(t.data) for t in data if isinstance(t, nodes.TemplateData))
        node.body.insert(0, nodes.ExprStmt(_tick(text), lineno=node.lineno))
        if isinstance(node, nodes.For) and node.test is not None:
            node.test = nodes.And(_tick(0), node.test, lineno=node.lineno)


def _tick(cost: int) -> nodes.Call:
    return nodes.Call(nodes.EnvironmentAttribute("pytrs_tick"), [nodes.Const(cost)], [], None, None)


# --- rendering -------------------------------------------------------------------------------


def render_compiled(
    template: Template, name: str, variables: Mapping[str, Any], limits: Limits
) -> str:
    """Render `template` within `limits`. Raises TemplateRenderError (or its Security/Limit
    subclasses) naming `name` and, when known, the template line."""
    try:
        with budgeted(limits):
            out: list[str] = []
            size = 0
            for chunk in template.generate(variables):
                size += len(chunk)
                if size > limits.output_chars:
                    raise LimitExceeded(f"output longer than {limits.output_chars} characters")
                out.append(chunk)
            return "".join(out)
    except LimitExceeded as exc:
        raise TemplateLimitError(name, str(exc), _line(exc, name)) from None
    except SecurityError as exc:
        raise TemplateSecurityError(
            name, f"refused by the sandbox: {exc}", _line(exc, name)
        ) from None
    except UndefinedError as exc:
        raise TemplateRenderError(name, str(exc), _line(exc, name)) from None
    except (RecursionError, MemoryError) as exc:
        raise TemplateLimitError(name, f"too deep or too big ({type(exc).__name__})") from None
    except Exception as exc:  # a failing filter, a bad argument …: all mean "not sent"
        raise TemplateRenderError(name, f"{type(exc).__name__}: {exc}", _line(exc, name)) from None


def _line(exc: BaseException, name: str) -> int:
    """The template line the error happened on: Jinja rewrites tracebacks so that frames of
    template code carry the template's file name (we compile with filename = name)."""
    line = 0
    tb: TracebackType | None = exc.__traceback__
    while tb is not None:
        if tb.tb_frame.f_code.co_filename == name:
            line = tb.tb_lineno
        tb = tb.tb_next
    return line
