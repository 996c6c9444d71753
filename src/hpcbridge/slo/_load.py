"""Reading SLO files, with errors that name the field, the value and the fix."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from hpcbridge.errors import ConfigError
from hpcbridge.slo._model import API_VERSION, KIND, SloFile

_MAX_BYTES = 1_000_000


class SloConfigError(ConfigError):
    """An SLO file is invalid; ``problems`` lists each as ``path: message``."""

    def __init__(self, message: str, *, problems: Sequence[str] = (), hint: str | None = None):
        self.problems = list(problems)
        super().__init__(message, hint=hint)


def load_slo_file(path: Path) -> SloFile:
    try:
        size = path.stat().st_size
        if size > _MAX_BYTES:
            raise SloConfigError(f"{path}: SLO file is {size} bytes; the limit is {_MAX_BYTES}")
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise SloConfigError(f"{path}: no such file", hint="check the path") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise SloConfigError(f"{path}: cannot read the SLO file: {exc}") from exc
    return load_slo_text(text, source=str(path))


def load_slo_text(text: str, *, source: str = "<slo>") -> SloFile:
    try:
        document = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise SloConfigError(f"{source}: invalid YAML{where}: {problem}") from None
    return load_slo_document(document, source=source)


def load_slo_document(document: object, *, source: str = "<slo>") -> SloFile:
    if not isinstance(document, Mapping):
        raise SloConfigError(
            f"{source}: an SLO file is a mapping, got {type(document).__name__}",
            hint=f"start with 'apiVersion: {API_VERSION}' and 'kind: {KIND}'",
        )
    try:
        return SloFile.model_validate(document)
    except ValidationError as exc:
        problems = [_describe(error) for error in exc.errors()]
        raise SloConfigError(_summary(source, problems), problems=problems) from None


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
    got = repr(error.get("input"))
    return f"{path}: {message} (got {got if len(got) <= 80 else got[:77] + '...'})"


def _valid_fields_at(loc: tuple[Any, ...]) -> list[str]:
    """Field names (as written in files) of the model that sits at ``loc``."""
    model: type[BaseModel] | None = SloFile
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
