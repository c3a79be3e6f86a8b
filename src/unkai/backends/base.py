"""The `Backend` protocol: everything durable goes through it.

A backend is composed of small stores, each primitive atomic at the backend (one SQL
transaction, later one Lua script). Semantics above the primitives (versions, routes, log
formatting, retries) live in the core and are written once; `tests/backends/` is the one
conformance suite that every implementation must pass.

Stores in this release:
  MetadataStore  JSON documents by (kind, key) with a revision each; `commit` applies several
                 writes atomically, and optimistic checks make concurrent deploys safe.
  LogStore       append-only log records with an id per record, queried by group, time range,
                 request id, text and cursor (`after_id`, for live tailing).
Queue, stream and lease stores join the protocol with the issues that need them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol


@dataclass(frozen=True, slots=True)
class Document:
    kind: str
    key: str
    value: dict[str, Any]
    #: Starts at 1 and grows by one with every write of the key.
    revision: int


@dataclass(frozen=True, slots=True)
class Write:
    """Put `value` at (kind, key), or delete it when `value` is None.

    `expected_revision`: None writes unconditionally; 0 requires that the key does not exist;
    n > 0 requires the stored revision to be n. A failed check fails the whole commit.
    """

    kind: str
    key: str
    value: dict[str, Any] | None
    expected_revision: int | None = None


@dataclass(slots=True)
class LogRecord:
    """A chunk of log text from one function instance (one or more lines)."""

    timestamp_ms: int
    group: str
    stream: str
    message: str
    request_id: str | None = None
    #: Assigned by the store on append; increasing in append order within one backend.
    id: int = 0


@dataclass(frozen=True, slots=True)
class LogQuery:
    """Records of `group` (exact) or of every group starting with `group_prefix`."""

    group: str | None = None
    group_prefix: str | None = None
    start_ms: int | None = None
    end_ms: int | None = None
    request_id: str | None = None
    #: Case-sensitive substring match on the message.
    contains: str | None = None
    after_id: int = 0
    limit: int = 1000
    #: True returns the newest `limit` records (still in ascending id order).
    newest: bool = False
    streams: tuple[str, ...] = field(default_factory=tuple)


class MetadataStore(Protocol):
    async def get(self, kind: str, key: str) -> Document | None:
        """The document, or None when the key does not exist."""
        ...

    async def list(self, kind: str, prefix: str = "") -> list[Document]:
        """Documents of `kind` whose key starts with `prefix`, ordered by key."""
        ...

    async def commit(self, writes: Sequence[Write]) -> None:
        """Apply all writes atomically; raises `unkai.errors.Conflict` on a failed check."""
        ...


class LogStore(Protocol):
    async def append_logs(self, records: Sequence[LogRecord]) -> None:
        """Store records durably, assigning each its `id`; returns once committed."""
        ...

    async def query_logs(self, query: LogQuery) -> list[LogRecord]:
        """Matching records in ascending id order."""
        ...

    async def purge_logs(self, before_ms: int) -> int:
        """Delete records older than `before_ms`; returns how many went."""
        ...


class Backend(MetadataStore, LogStore, Protocol):
    """All durable state. `open` before use, `close` to flush and release."""

    async def open(self) -> None: ...

    async def close(self) -> None: ...
