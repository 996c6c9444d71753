"""The runbooks, shipped with the package (``<name>.md`` next to this module).

Alert rules, notifications, ``hpcbridge why`` and the dashboards link
``<runbook_url_base>/<name>.md``: the ``runbook_url_base`` setting says where a site
publishes them; unset, the link is the path in hpcbridge's source tree
(``docs/runbooks``, which is this directory). ``hpcbridge runbook NAME`` prints one.
"""

from __future__ import annotations

from importlib import resources

DEFAULT_RUNBOOK_BASE = "docs/runbooks"
INDEX = "README"

__all__ = ["DEFAULT_RUNBOOK_BASE", "read_runbook", "runbook_names", "runbook_url"]


def runbook_url(name: str, base: str | None = None) -> str:
    """Where runbook ``name`` is read: ``<base>/<name>.md`` (base: the default when None)."""
    return f"{(base or DEFAULT_RUNBOOK_BASE).rstrip('/')}/{name}.md"


def runbook_names() -> list[str]:
    """The shipped runbooks, by name (the index first)."""
    names = sorted(
        entry.name.removesuffix(".md")
        for entry in resources.files(__name__).iterdir()
        if entry.name.endswith(".md") and entry.name != f"{INDEX}.md"
    )
    return [INDEX, *names]


def read_runbook(name: str) -> str:
    """The text of shipped runbook ``name``; KeyError when there is none of that name."""
    if name not in runbook_names():
        raise KeyError(name)
    return resources.files(__name__).joinpath(f"{name}.md").read_text(encoding="utf-8")
