"""Label matchers and maintenance silences, with Alertmanager's semantics."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

MatchOp = Literal["=", "!=", "=~", "!~"]
_OPS: dict[str, MatchOp] = {"=": "=", "!=": "!=", "=~": "=~", "!~": "!~"}
_MATCHER = re.compile(
    r'^\s*([A-Za-z_][A-Za-z0-9_]*)\s*(=~|!~|!=|=)\s*(?:"((?:[^"\\]|\\.)*)"|([^,"]*?))\s*$'
)


@dataclass(frozen=True, slots=True)
class Matcher:
    """``label op value``; a label the alert lacks counts as the empty string."""

    label: str
    value: str
    op: MatchOp = "="

    def __post_init__(self) -> None:
        if self.op in ("=~", "!~"):
            try:
                re.compile(self.value)
            except re.error as exc:
                raise ValueError(f"matcher {self.label}{self.op}{self.value!r}: {exc}") from None

    def matches(self, labels: Mapping[str, str]) -> bool:
        actual = labels.get(self.label, "")
        if self.op == "=":
            return actual == self.value
        if self.op == "!=":
            return actual != self.value
        found = re.fullmatch(self.value, actual) is not None
        return found if self.op == "=~" else not found

    def __str__(self) -> str:
        escaped = self.value.replace("\\", "\\\\").replace('"', '\\"')
        return f'{self.label}{self.op}"{escaped}"'


def parse_matchers(text: str) -> tuple[Matcher, ...]:
    """Parse ``workload_class="critical", failure_class=~"node_failure|lost"``."""
    matchers: list[Matcher] = []
    for part in _split(text):
        found = _MATCHER.match(part)
        if not found:
            raise ValueError(
                f"{part.strip()!r} is not a matcher; write label=value, label!=value, "
                'label=~"regex" or label!~"regex"'
            )
        label, op, quoted, bare = found.groups()
        value = bare if quoted is None else re.sub(r"\\(.)", r"\1", quoted)
        matchers.append(Matcher(label, value, _OPS[op]))
    return tuple(matchers)


def _split(text: str) -> list[str]:
    parts: list[str] = []
    current: list[str] = []
    quoted = escaped = False
    for char in text:
        if char == "," and not quoted:
            parts.append("".join(current))
            current = []
            continue
        current.append(char)
        if escaped:
            escaped = False
        elif char == "\\":
            escaped = True
        elif char == '"':
            quoted = not quoted
    parts.append("".join(current))
    return [p for p in parts if p.strip()]


@dataclass(frozen=True, slots=True)
class Silence:
    """Mutes alerts whose labels match all ``matchers`` while ``starts_at <= now < ends_at``."""

    matchers: tuple[Matcher, ...]
    starts_at: float
    ends_at: float
    comment: str = ""
    created_by: str = ""

    def __post_init__(self) -> None:
        if not self.matchers:
            raise ValueError("a silence needs at least one matcher; it would mute everything")
        if self.ends_at <= self.starts_at:
            raise ValueError("a silence must end after it starts")

    def active(self, now: float) -> bool:
        return self.starts_at <= now < self.ends_at

    def mutes(self, labels: Mapping[str, str], now: float) -> bool:
        return self.active(now) and all(m.matches(labels) for m in self.matchers)
