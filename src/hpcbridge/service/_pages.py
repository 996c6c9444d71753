"""Cursor pages: newest first, and stable while jobs are added (the cursor names the last
job shown, so a new job never shifts the next page)."""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

from hpcbridge.errors import InvalidRequestError
from hpcbridge.store import Job

T = TypeVar("T")

MAX_PAGE = 1000


@dataclass(frozen=True, slots=True)
class Page(Generic[T]):
    items: list[T]
    next_cursor: str | None = None


def encode_cursor(job: Job) -> str:
    text = json.dumps([job.created_at, job.job_id], separators=(",", ":"))
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[float, str]:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        created_at, job_id = json.loads(base64.urlsafe_b64decode(padded.encode()))
        return float(created_at), str(job_id)
    except (ValueError, TypeError, binascii.Error) as exc:
        raise InvalidRequestError(
            f"cursor {cursor[:40]!r} is not one this service gave out",
            hint="use the next_cursor of the previous page, or leave the cursor out",
        ) from exc


def check_limit(limit: int) -> int:
    if not 1 <= limit <= MAX_PAGE:
        raise InvalidRequestError(
            f"limit {limit} is out of range", hint=f"ask for 1 to {MAX_PAGE} jobs per page"
        )
    return limit


def page_of(found: Sequence[Job], limit: int) -> Page[Job]:
    """``found`` holds up to ``limit + 1`` jobs: one more tells whether a next page exists."""
    items = list(found[:limit])
    more = len(found) > limit
    return Page(items, encode_cursor(items[-1]) if more and items else None)
