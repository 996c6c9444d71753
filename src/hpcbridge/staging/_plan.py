"""A spec's stage entries as file tasks: one per file, trees walked with include/exclude."""

from __future__ import annotations

import os
import posixpath
from collections.abc import Sequence
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Any

from fsspec.implementations.local import LocalFileSystem

from hpcbridge.spec import StageIn, StageOut
from hpcbridge.staging._errors import StagingError
from hpcbridge.staging._transfer import FileTask
from hpcbridge.staging._urls import Location, locate

_BAD_LINK = "link"
"""What a walk of a local tree calls a link it cannot stage as a file."""


def selected(relative: str, include: Sequence[str], exclude: Sequence[str]) -> bool:
    """A file of a tree is staged if it matches an include glob (any, when none is given)
    and no exclude glob; globs match the path under the tree's root or its base name."""

    def matches(glob: str) -> bool:
        return fnmatchcase(relative, glob) or fnmatchcase(posixpath.basename(relative), glob)

    return (not include or any(map(matches, include))) and not any(map(matches, exclude))


def _info(location: Location) -> dict[str, Any] | None:
    try:
        info: dict[str, Any] = location.fs.info(location.path)
        return info
    except FileNotFoundError:
        return None
    except Exception as exc:
        raise StagingError(
            f"{location.url}: cannot read it ({exc})",
            hint="check the URL, the credentials and that the storage is reachable",
        ) from exc


def _tasks(
    source: Location,
    dest: Location,
    include: Sequence[str],
    exclude: Sequence[str],
    checksum: str | None,
    field: str,
) -> list[FileTask]:
    info = _info(source)
    if info is None:
        raise StagingError(
            f"{field}: {source.url} does not exist", hint="fix the source or create it first"
        )
    if info.get("type") != "directory":
        if include or exclude:
            raise StagingError(
                f"{field}: include/exclude apply to directories and {source.url} is a file",
                hint="remove include/exclude or give a directory",
            )
        return [FileTask(source, dest, _size(info), checksum, _identity(info))]
    if checksum is not None:
        raise StagingError(
            f"{field}: a checksum names one file and {source.url} is a directory",
            hint="remove the checksum or stage the file itself",
        )
    found = _find(source)
    root = source.path.rstrip("/") + "/"
    tasks = []
    for path in sorted(found):
        relative = path[len(root) :] if path.startswith(root) else posixpath.basename(path)
        if selected(relative, include, exclude):
            child = found[path]
            if child.get("type") == _BAD_LINK:
                raise StagingError(
                    f"{field}: {path} is a symbolic link to a directory or to nothing",
                    hint="stage what it points to as an entry of its own, or exclude it",
                )
            tasks.append(
                FileTask(
                    source.child(relative),
                    dest.child(relative),
                    _size(child),
                    identity=_identity(child),
                )
            )
    return tasks


def _find(source: Location) -> dict[str, dict[str, Any]]:
    """path -> info of every file under a directory, as ``fs.find(detail=True)`` gives it.
    A plain local directory is walked with ``os.scandir`` (one stat a file; fsspec's
    walk costs several times as much for a tree of small files)."""
    if type(source.fs) is not LocalFileSystem:
        found: dict[str, dict[str, Any]] = source.fs.find(source.path, detail=True)
        return found
    files: dict[str, dict[str, Any]] = {}
    pending = [source.path.rstrip("/") or "/"]
    while pending:
        with os.scandir(pending.pop()) as entries:
            for entry in entries:
                if entry.is_dir(follow_symlinks=False):
                    pending.append(entry.path)
                elif entry.is_file():  # a link to a file counts as the file
                    stat = entry.stat()
                    files[entry.path] = {"size": stat.st_size, "mtime": stat.st_mtime}
                elif entry.is_symlink():  # to a directory, or dangling: refused if selected
                    files[entry.path] = {"type": _BAD_LINK}
    return files


def _identity(info: dict[str, Any]) -> str | None:
    """A version of the source that changes when its content does (None: unknown)."""
    for key in ("ETag", "etag", "mtime", "LastModified", "last_modified"):
        if info.get(key) is not None:
            return f"{key}={info[key]}"
    return None


def _size(info: dict[str, Any]) -> int | None:
    size = info.get("size")
    return int(size) if isinstance(size, int) else None


def plan_in(entries: Sequence[StageIn], data_dir: Path) -> list[FileTask]:
    tasks: list[FileTask] = []
    for n, entry in enumerate(entries):
        dest = locate(_inside(entry.dest, data_dir, f"stage_in[{n}].dest"), data_dir)
        source = locate(entry.source, data_dir)
        tasks += _tasks(
            source, dest, entry.include, entry.exclude, entry.checksum, f"stage_in[{n}]"
        )
    return tasks


def plan_out(entries: Sequence[StageOut], data_dir: Path, *, succeeded: bool) -> list[FileTask]:
    tasks: list[FileTask] = []
    for n, entry in enumerate(entries):
        if not succeeded and entry.when != "always":
            continue
        source = locate(_inside(entry.source, data_dir, f"stage_out[{n}].source"), data_dir)
        dest = locate(entry.dest, data_dir, writable=True)
        tasks += _tasks(source, dest, entry.include, entry.exclude, None, f"stage_out[{n}]")
    return tasks


def _inside(path: str, data_dir: Path, field: str) -> str:
    """A relative path stays inside the job's data directory (absolute paths are taken
    as given: scratch space outside it)."""
    if "://" in path or Path(path).is_absolute():
        return path
    resolved = (data_dir / path).resolve()
    if not resolved.is_relative_to(data_dir.resolve()):
        raise StagingError(
            f"{field}: {path!r} leaves the job's data directory",
            hint="give a path below it, without '..'",
        )
    return str(data_dir / path)
