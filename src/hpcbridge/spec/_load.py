"""Reading a JobSpec from YAML or JSON, with errors that name the field, value and fix.

A spec is untrusted input, so its shape is bounded before anything walks it: at most
``_MAX_SPEC_BYTES`` of text, ``_MAX_DEPTH`` levels of nesting and ``_MAX_VALUES`` values
once YAML aliases are expanded (a "billion laughs" document is a few hundred bytes that
expand to 10^9 values: validating it took minutes and gigabytes). Values echoed in error
messages are shortened, so that a huge value does not make a huge message.
"""

from __future__ import annotations

import difflib
import json
import reprlib
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError
from yaml.nodes import MappingNode, Node, SequenceNode

from hpcbridge.errors import SpecError
from hpcbridge.spec._model import JobSpec

_MAX_SPEC_BYTES = 1_000_000
# Levels of mappings and lists: a real spec uses about six (array.params.NAME[...]).
_MAX_DEPTH = 50
# Values, counting each use of an alias in full: more than a sweep of MAX_TASKS values needs.
_MAX_VALUES = 250_000
# Longest problem line; longer ones (a validator that quotes a huge value) are cut.
_MAX_PROBLEM_CHARS = 400

_shown = reprlib.Repr()
_shown.maxstring = 60
_shown.maxother = 60
_shown.maxlevel = 3


def load_spec_file(path: Path, *, required_tags: tuple[str, ...] = ()) -> JobSpec:
    try:
        size = path.stat().st_size
        if size > _MAX_SPEC_BYTES:
            raise SpecError(f"{path}: spec is {size} bytes; the limit is {_MAX_SPEC_BYTES}")
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise SpecError(f"{path}: no such file", hint="check the path") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise SpecError(f"{path}: cannot read the spec: {exc}") from exc
    return load_spec_text(text, source=str(path), required_tags=required_tags)


def load_spec_text(
    text: str, *, source: str = "<spec>", required_tags: tuple[str, ...] = ()
) -> JobSpec:
    document = _parse_document(text, source)
    return load_spec_document(document, source=source, required_tags=required_tags)


def load_spec_document(
    document: object, *, source: str = "<spec>", required_tags: tuple[str, ...] = ()
) -> JobSpec:
    if not isinstance(document, Mapping):
        raise SpecError(
            f"{source}: a job spec is a mapping, got {type(document).__name__}",
            hint="start with 'apiVersion: hpcbridge/v1' and 'kind: Job'",
        )
    try:
        spec = JobSpec.model_validate(document)
    except ValidationError as exc:
        problems = [_clip(_describe(error)) for error in exc.errors()]
        raise SpecError(_summary(source, problems), problems=problems) from None
    problems = spec.check_required_tags(required_tags)
    if problems:
        raise SpecError(_summary(source, problems), problems=problems)
    return spec


def _parse_document(text: str, source: str) -> object:
    stripped = text.lstrip()
    if stripped.startswith("{"):
        try:
            document = json.loads(text)
        except json.JSONDecodeError as exc:
            raise SpecError(
                f"{source}: invalid JSON at line {exc.lineno}, column {exc.colno}: {exc.msg}"
            ) from None
        except RecursionError:
            raise SpecError(f"{source}: {_TOO_DEEP}") from None
        try:
            _check_shape(document, _json_children)
        except _TooComplexError as exc:
            raise SpecError(f"{source}: {exc}") from None
        return document
    try:
        documents = [d for d in yaml.load_all(text, Loader=_BoundedLoader) if d is not None]
    except _TooComplexError as exc:
        raise SpecError(f"{source}: {exc}") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise SpecError(f"{source}: invalid YAML{where}: {problem}") from None
    if len(documents) != 1:
        raise SpecError(f"{source}: expected one YAML document, found {len(documents)}")
    return documents[0]


class _TooComplexError(Exception):
    """The document is nested too deeply or expands to too many values."""


_TOO_DEEP = (
    f"nested more than {_MAX_DEPTH} levels deep; a job spec needs a handful of levels: "
    "flatten the structure"
)


class _BoundedLoader(yaml.SafeLoader):
    """PyYAML's safe loader, refusing deep nesting as it composes (PyYAML's composer recurses
    once per level) and documents whose aliases expand to too many values, before any
    Python object is built."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._depth = 0

    def compose_node(self, parent: Node | None, index: int) -> Node | None:
        self._depth += 1
        try:
            if self._depth > _MAX_DEPTH:
                where = f"line {parent.start_mark.line + 1}: " if parent is not None else ""
                raise _TooComplexError(where + _TOO_DEEP)
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1

    def compose_document(self) -> Node | None:
        node = super().compose_document()
        if node is not None:
            _check_shape(node, _node_children)
        return node


def _node_children(node: Node) -> list[Node]:
    if isinstance(node, SequenceNode):
        return list(node.value)
    if isinstance(node, MappingNode):
        return [part for pair in node.value for part in pair]
    return []


def _json_children(value: object) -> list[object]:
    if isinstance(value, dict):
        return [part for pair in value.items() for part in pair]
    if isinstance(value, list):
        return list(value)
    return []


_T = TypeVar("_T")


def _check_shape(root: _T, children: Callable[[_T], list[_T]]) -> None:
    """Refuse a graph (shared parts counted at each use) deeper than ``_MAX_DEPTH`` levels,
    with more than ``_MAX_VALUES`` values, or with a cycle. Each distinct part is visited
    once and without recursion, so a billion-laughs document is measured in microseconds."""
    size: dict[int, int] = {}
    depth: dict[int, int] = {}
    open_parts: set[int] = set()
    stack: list[tuple[_T, bool]] = [(root, False)]
    while stack:
        part, expanded = stack.pop()
        key = id(part)
        if expanded:
            kids = children(part)
            size[key] = 1 + sum(size[id(kid)] for kid in kids)
            depth[key] = 1 + max((depth[id(kid)] for kid in kids), default=0)
            open_parts.discard(key)
            if depth[key] > _MAX_DEPTH:
                raise _TooComplexError(_TOO_DEEP)
            if size[key] > _MAX_VALUES:
                raise _TooComplexError(
                    f"more than {_MAX_VALUES} values once YAML aliases are expanded; "
                    "write the values out, or use fewer aliases of aliases"
                )
        elif key in open_parts:
            raise _TooComplexError("a YAML alias refers to the value that contains it")
        elif key not in size:
            open_parts.add(key)
            stack.append((part, True))
            stack.extend((kid, False) for kid in children(part) if id(kid) not in size)


def _summary(source: str, problems: Sequence[str]) -> str:
    if len(problems) == 1:
        return f"{source}: {problems[0]}"
    return f"{source}: {len(problems)} problems:\n" + "\n".join(f"  - {p}" for p in problems)


def _describe(error: Mapping[str, Any]) -> str:
    loc = tuple(error["loc"])
    path = ".".join(str(part) for part in loc) or "(top level)"
    kind = error["type"]
    if kind == "extra_forbidden":
        fields = _valid_fields_at(loc[:-1])
        guess = _closest(loc[-1] if loc else "", fields)
        hint = f" (did you mean {guess!r}?)" if guess else ""
        return f"{path}: unknown field{hint}; valid fields here are: {', '.join(fields)}"
    if kind == "missing":
        return f"{path}: required field is missing; add it"
    message = str(error["msg"]).removeprefix("Value error, ")
    if kind.startswith("value_error"):
        return f"{path}: {message}"
    return f"{path}: {message} (got {_shown.repr(error.get('input'))})"


def _closest(name: object, fields: Sequence[str]) -> str | None:
    """The valid field ``name`` was most likely meant to be: the same in another case,
    one it shortens or extends (``cpus`` -> ``cpus_per_task``, ``maximum`` -> ``max``),
    else the closest spelling (``nmae`` -> ``name``); None when nothing is close."""
    if not isinstance(name, str) or not name:
        return None
    lowered = name.lower()
    same = [f for f in fields if f.lower() == lowered]
    if same:
        return same[0]
    related = [
        f
        for f in fields
        if len(min(lowered, f, key=len)) >= 3
        and (f.lower().startswith(lowered) or lowered.startswith(f.lower()))
    ]
    found = difflib.get_close_matches(name, related or fields, n=1, cutoff=0 if related else 0.6)
    return found[0] if found else None


def _clip(problem: str) -> str:
    if len(problem) <= _MAX_PROBLEM_CHARS:
        return problem
    cut = len(problem) - _MAX_PROBLEM_CHARS
    return f"{problem[:_MAX_PROBLEM_CHARS]}... ({cut} more characters)"


def _valid_fields_at(loc: tuple[Any, ...]) -> list[str]:
    """Field names (as written in specs) of the model that sits at ``loc``."""
    model: type[BaseModel] | None = JobSpec
    for part in loc:
        if model is None or not isinstance(part, str):
            continue
        field = next((f for name, f in model.model_fields.items() if part in (name, f.alias)), None)
        model = _model_of(field.annotation) if field else None
    if model is None:
        return []
    return sorted(f.alias or name for name, f in model.model_fields.items())


def _model_of(annotation: Any) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in getattr(annotation, "__args__", ()):
        found = _model_of(arg)
        if found is not None:
            return found
    return None
