"""constraints.txt is what the test command installs under (``pip install -c``): pip
refuses the whole file for one line it cannot take as a constraint, so a bad line breaks
every fresh set-up, not one package."""

from __future__ import annotations

import re
from pathlib import Path

CONSTRAINTS = Path(__file__).resolve().parents[1] / "constraints.txt"
# A name and version specifiers, optionally an environment marker; no extras, no URLs.
_LINE = re.compile(
    r"^[A-Za-z0-9][A-Za-z0-9._-]*\s*((===?|~=|!=|<=?|>=?)\s*[\w.*+!-]+\s*,?\s*)*(;.*)?$"
)


def test_every_constraint_is_a_name_and_versions() -> None:
    lines = [line.split("#", 1)[0].strip() for line in CONSTRAINTS.read_text().splitlines()]
    bad = [line for line in lines if line and not _LINE.match(line)]
    assert bad == [], f"pip cannot take these as constraints: {bad}"
