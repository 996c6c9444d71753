"""Where bytes come from and go to: a local path or any installed fsspec protocol."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import fsspec
from fsspec.implementations.local import LocalFileSystem

from hpcbridge.staging._errors import StagingError

READ_ONLY = frozenset({"http", "https"})


@dataclass(frozen=True, slots=True)
class Location:
    url: str
    fs: Any  # fsspec.AbstractFileSystem (untyped)
    path: str

    @property
    def local(self) -> bool:
        return isinstance(self.fs, LocalFileSystem)

    @property
    def protocol(self) -> str:
        protocol = self.fs.protocol
        return str(protocol[0] if isinstance(protocol, (tuple, list)) else protocol)

    @property
    def endpoint(self) -> str:
        """The storage it is on, as a bounded metric label: ``file`` for local paths, else
        ``<protocol>://<host or bucket>``."""
        if self.local:
            return "file"
        return f"{self.protocol}://{urlsplit(self.url).netloc}"

    def child(self, relative: str) -> Location:
        sep = "" if self.path.endswith("/") else "/"
        url_sep = "" if self.url.endswith("/") else "/"
        return Location(self.url + url_sep + relative, self.fs, self.path + sep + relative)


def locate(url: str, base: Path, *, writable: bool = False, **options: Any) -> Location:
    """``url`` as a filesystem and path; a relative local path is taken under ``base``."""
    if "://" not in url:
        path = Path(url).expanduser()
        url = str(path if path.is_absolute() else base / path)
    try:
        fs, path = fsspec.core.url_to_fs(url, **options)
    except (ImportError, ValueError) as exc:
        scheme = url.split("://", 1)[0]
        raise StagingError(
            f"{url}: cannot open {scheme}:// URLs here ({exc})",
            hint="install the fsspec package for that protocol (s3fs for s3://)",
        ) from exc
    location = Location(url, fs, str(path))
    if writable and location.protocol in READ_ONLY:
        raise StagingError(
            f"{url}: {location.protocol}:// is read-only", hint="stage out to a path or s3://"
        )
    return location
