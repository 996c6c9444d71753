"""Reading a JobSpec from YAML or JSON, with errors that name the field, value and fix."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from hpcbridge.errors import SpecError
from hpcbridge.spec._model import JobSpec

_MAX_SPEC_BYTES = 1_000_000


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
        problems = [_describe(error) for error in exc.errors()]
        raise SpecError(_summary(source, problems), problems=problems) from None
    problems = spec.check_required_tags(required_tags)
    if problems:
        raise SpecError(_summary(source, problems), problems=problems)
    return spec


def _parse_document(text: str, source: str) -> object:
    stripped = text.lstrip()
    if stripped.startswith("{"):
        try:
            return json.loads(text)
        except json.JSONDecodeError as exc:
            raise SpecError(
                f"{source}: invalid JSON at line {exc.lineno}, column {exc.colno}: {exc.msg}"
            ) from None
    try:
        documents = [d for d in yaml.safe_load_all(text) if d is not None]
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise SpecError(f"{source}: invalid YAML{where}: {problem}") from None
    if len(documents) != 1:
        raise SpecError(f"{source}: expected one YAML document, found {len(documents)}")
    return documents[0]


def _summary(source: str, problems: Sequence[str]) -> str:
    if len(problems) == 1:
        return f"{source}: {problems[0]}"
    return f"{source}: {len(problems)} problems:\n" + "\n".join(f"  - {p}" for p in problems)


def _describe(error: Mapping[str, Any]) -> str:
    loc = tuple(error["loc"])
    path = ".".join(str(part) for part in loc) or "(top level)"
    kind = error["type"]
    if kind == "extra_forbidden":
        valid = ", ".join(_valid_fields_at(loc[:-1]))
        return f"{path}: unknown field; valid fields here are: {valid}"
    if kind == "missing":
        return f"{path}: required field is missing; add it"
    message = str(error["msg"]).removeprefix("Value error, ")
    if kind.startswith("value_error"):
        return f"{path}: {message}"
    return f"{path}: {message} (got {error.get('input')!r})"


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
