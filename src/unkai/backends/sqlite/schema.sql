-- The persistent layout of the sqlite backend (one file, WAL mode).
--
-- Applied by the writer thread on every open; every statement is idempotent. `user_version`
-- records the layout so that a later release can migrate an older file before using it.
-- Text compares with the BINARY collation (UTF-8 bytes = code point order), the same order
-- as Python's `str` comparison, so prefix ranges computed in Python select exactly.

PRAGMA user_version = 1;

-- documents: the MetadataStore. One JSON document per (kind, key), e.g. kind "function",
-- key "dev/hello". `value` is the orjson-encoded object (a BLOB: no decode on the way in or
-- out). `revision` starts at 1 and grows by one with every write; a delete removes the row, so
-- a key that is created again starts over at 1. WITHOUT ROWID: the primary key is the only
-- access path (point reads, prefix scans ordered by key), so the row lives in that b-tree.
CREATE TABLE IF NOT EXISTS documents (
    kind     TEXT    NOT NULL,
    key      TEXT    NOT NULL,
    value    BLOB    NOT NULL,
    revision INTEGER NOT NULL CHECK (revision >= 1),
    PRIMARY KEY (kind, key)
) WITHOUT ROWID;

-- logs: the LogStore. One row per record (a chunk of one or more lines of one stream).
-- `id` is the cursor of `unkai logs -t`: AUTOINCREMENT keeps ids increasing for the life of
-- the file, even after a purge deletes the newest rows (a reused id would be skipped by a
-- tail whose cursor is already past it). The writer assigns ids itself, contiguously, from
-- sqlite_sequence inside the append transaction. `log_group` is the platform's group key
-- ("/unkai/<stage>/<function>", see unkai.observe.logs); `request_id` is NULL for platform
-- messages that belong to no invocation.
CREATE TABLE IF NOT EXISTS logs (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    timestamp_ms INTEGER NOT NULL,
    log_group    TEXT    NOT NULL,
    stream       TEXT    NOT NULL,
    request_id   TEXT,
    message      TEXT    NOT NULL
);

-- Serves every query of one group (or a group prefix range) in cursor order: `unkai logs`,
-- tails (`id > after_id`) and "newest n" (scanned backwards).
CREATE INDEX IF NOT EXISTS logs_by_group_id ON logs (log_group, id);

-- Serves "the lines of one invocation" (`unkai logs --request-id`). Partial: platform
-- messages without a request id cost no index entry.
CREATE INDEX IF NOT EXISTS logs_by_request_id ON logs (request_id) WHERE request_id IS NOT NULL;

-- Serves the retention purge (`timestamp_ms < ?`) without scanning the table, and time-range
-- queries that name no group.
CREATE INDEX IF NOT EXISTS logs_by_time ON logs (timestamp_ms);

-- queue_messages: the QueueStore. One row per message of any queue, from send to delete.
-- `id` (AUTOINCREMENT: never reused, so it only grows) is the send order, a FIFO queue's
-- SequenceNumber, and the message's row in receipt handles. `visible_ms` is when the message
-- can next be received: sent + delay, then receive + visibility timeout. `receipt` is the token
-- of the latest receive (NULL before the first): a delete or visibility change must quote it.
-- `attributes` is the message attributes as the core encoded them (opaque here).
CREATE TABLE IF NOT EXISTS queue_messages (
    id               INTEGER PRIMARY KEY AUTOINCREMENT,
    queue            TEXT    NOT NULL,
    message_id       TEXT    NOT NULL,
    body             BLOB    NOT NULL,
    attributes       BLOB,
    sent_ms          INTEGER NOT NULL,
    visible_ms       INTEGER NOT NULL,
    receive_count    INTEGER NOT NULL DEFAULT 0,
    first_receive_ms INTEGER,
    receipt          TEXT,
    group_id         TEXT,
    dedup_id         TEXT
);

-- Serves standard receives (visible now, oldest visibility first) and the delayed / in-flight
-- counts of `unkai info`.
CREATE INDEX IF NOT EXISTS queue_messages_by_visible ON queue_messages (queue, visible_ms);

-- Serves FIFO receives, retention purges and the oldest message's age: a queue's rows in send
-- order.
CREATE INDEX IF NOT EXISTS queue_messages_by_queue_id ON queue_messages (queue, id);

-- queue_dedup: a FIFO queue's deduplication ids of the last five minutes. A send whose id is
-- here (and not expired) is accepted but not stored again; it gets the first message's id.
CREATE TABLE IF NOT EXISTS queue_dedup (
    queue      TEXT    NOT NULL,
    dedup_id   TEXT    NOT NULL,
    message_id TEXT    NOT NULL,
    sequence   INTEGER NOT NULL,
    expires_ms INTEGER NOT NULL,
    PRIMARY KEY (queue, dedup_id)
) WITHOUT ROWID;
