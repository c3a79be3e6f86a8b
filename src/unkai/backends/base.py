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
  QueueStore     messages of named queues with SQS's primitives: send (with FIFO
                 deduplication), receive (visibility, receipts, FIFO group locking, redrive to a
                 dead-letter queue, retention), delete and change visibility by receipt, move,
                 purge and counts. Queue settings live in the MetadataStore.
Stream and lease stores join the protocol with the issues that need them.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from unkai.observe.report import InvocationFacts


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
    #: An invocation's record in parts (START to REPORT), with `message` empty: made at every
    #: invocation, its text is formatted only when a query reads it. A store keeps the parts
    #: (or `facts.text(request_id)`) and returns the text in `message`, with `facts` None.
    facts: InvocationFacts | None = None


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

    async def list(
        self, kind: str, prefix: str = "", *, after: str | None = None, limit: int | None = None
    ) -> list[Document]:
        """Documents of `kind` whose key starts with `prefix`, ordered by key; with `after`,
        only keys above it, and with `limit`, at most that many (one page: `documents` reads
        a kind page by page)."""
        ...

    async def commit(self, writes: Sequence[Write]) -> None:
        """Apply all writes atomically; raises `unkai.errors.Conflict` on a failed check."""
        ...


#: Documents per page when a whole kind is read back (`each_document`).
DOCUMENTS_PAGE = 32


async def each_document(store: MetadataStore, kind: str) -> AsyncIterator[Document]:
    """Every document of `kind`, in key order, read DOCUMENTS_PAGE at a time: a kind whose
    documents carry payloads (pending events, messages) is never all in memory at once."""
    after: str | None = None
    while page := await store.list(kind, after=after, limit=DOCUMENTS_PAGE):
        for doc in page:
            yield doc
        after = page[-1].key


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


@dataclass(frozen=True, slots=True)
class NewMessage:
    """A message to store. `attributes` is opaque to the store (the core's encoding)."""

    message_id: str
    body: bytes
    attributes: bytes | None = None
    delay_ms: int = 0
    #: FIFO queues: the message group, and the deduplication id (explicit or content hash).
    group_id: str | None = None
    dedup_id: str | None = None
    #: The deduplication id counts within the message group only (DeduplicationScope
    #: messageGroup), not in the whole queue.
    dedup_per_group: bool = False


@dataclass(frozen=True, slots=True)
class SentMessage:
    message_id: str
    #: The store's send order; a FIFO queue's SequenceNumber.
    sequence: int
    #: The deduplication id was seen within the window: nothing was stored, and `message_id`
    #: and `sequence` are those of the first send.
    duplicate: bool = False


@dataclass(frozen=True, slots=True)
class QueuedMessage:
    """A message as a receive returns it (its receive already counted)."""

    sequence: int
    message_id: str
    body: bytes
    attributes: bytes | None
    sent_ms: int
    receive_count: int
    first_receive_ms: int
    #: "<sequence>:<token>"; a new token per receive. Deletes and visibility changes must quote
    #: the latest one.
    receipt: str
    group_id: str | None = None
    dedup_id: str | None = None


@dataclass(frozen=True, slots=True)
class ReceiveRequest:
    queue: str
    max_messages: int
    visibility_ms: int
    now_ms: int
    #: FIFO: messages in send order, none of a group that has a message in flight or delayed.
    fifo: bool = False
    #: Messages sent before this are past retention: deleted, not returned.
    expired_before_ms: int = 0
    #: (queue, maxReceiveCount): a message already received that many times moves there
    #: instead of being returned (SQS redrive policy).
    dead_letter: tuple[str, int] | None = None


@dataclass(frozen=True, slots=True)
class QueueCounts:
    visible: int
    in_flight: int
    delayed: int
    #: SentTimestamp of the oldest message, None when the queue is empty.
    oldest_sent_ms: int | None


class QueueStore(Protocol):
    async def send_messages(
        self, queue: str, messages: Sequence[NewMessage], now_ms: int, dedup_window_ms: int
    ) -> list[SentMessage]:
        """Store `messages` atomically, in order; one outcome per message."""
        ...

    async def receive_messages(self, request: ReceiveRequest) -> list[QueuedMessage]:
        """Up to `max_messages` visible messages, made invisible for `visibility_ms`."""
        ...

    async def delete_messages(self, queue: str, receipts: Sequence[str]) -> int:
        """Delete by receipt; returns how many messages went (a stale receipt deletes
        nothing, as in SQS, and is no error)."""
        ...

    async def change_visibility(
        self, queue: str, changes: Sequence[tuple[str, int]], now_ms: int
    ) -> list[bool]:
        """(receipt, timeout_ms): visible again at now + timeout. False: the message is not in
        flight under that receipt."""
        ...

    async def move_messages(self, source: str, destination: str, limit: int, now_ms: int) -> int:
        """Move up to `limit` of the oldest messages, visible at once, receive count reset."""
        ...

    async def return_messages(self, queue: str, receipts: Sequence[str], now_ms: int) -> int:
        """Make in-flight messages visible now as if this receive had not happened (its
        receive count taken back): a consumer that took more than it could hand on returns
        the rest without using up their maxReceiveCount. Returns how many went back."""
        ...

    async def purge_queue(self, queue: str) -> int:
        """Delete every message of the queue; returns how many went."""
        ...

    async def drop_queue(self, queue: str) -> int:
        """The queue is deleted: its messages and its deduplication ids go."""
        ...

    async def expire_messages(self, queue: str, sent_before_ms: int, now_ms: int) -> int:
        """Delete messages past retention and forget expired deduplication ids."""
        ...

    async def count_messages(self, queue: str, now_ms: int) -> QueueCounts: ...


class Backend(MetadataStore, LogStore, QueueStore, Protocol):
    """All durable state. `open` before use, `close` to flush and release."""

    async def open(self) -> None: ...

    async def close(self) -> None: ...
