-- The persistent layout of the sqlite backend (one file, WAL mode).
--
-- Applied by the writer thread on every open; every statement is idempotent. `user_version`
-- records the layout so that a later release can migrate an older file before using it.
-- Text compares with the BINARY collation (UTF-8 bytes = code point order), the same order
-- as Python's `str` comparison, so prefix ranges computed in Python select exactly.

PRAGMA user_version = 2;

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

-- log_blocks: the LogStore's index. The records are in segment files beside the database
-- (log_files.py, log_blocks.py), one block per append of up to 256 records; here is one row per
-- block, written once and never again (a purge may rewrite a block's survivors elsewhere).
-- `last_id` is the id of the block's last record when it was written. AUTOINCREMENT keeps it
-- growing for the life of the file, even after a purge deletes the newest blocks: the next
-- append's ids start after sqlite_sequence's value, inside the append transaction, so an id is
-- never reused (a reused id would be skipped by a tail whose cursor is already past it).
-- Blocks never overlap in ids, so blocks in `last_id` order give their records in id order.
-- `groups` and `request_ids` list the block's group keys ("/unkai/<stage>/<function>", see
-- unkai.observe.logs) and request ids, each between newlines, for instr() filters; `min_ts` and
-- `max_ts` bound its records' timestamps; `crc` is zlib.crc32 of its bytes.
CREATE TABLE IF NOT EXISTS log_blocks (
    last_id     INTEGER PRIMARY KEY AUTOINCREMENT,
    min_ts      INTEGER NOT NULL,
    max_ts      INTEGER NOT NULL,
    records     INTEGER NOT NULL,
    segment     INTEGER NOT NULL,
    position    INTEGER NOT NULL,
    length      INTEGER NOT NULL,
    crc         INTEGER NOT NULL,
    groups      TEXT    NOT NULL,
    request_ids TEXT    NOT NULL
);

-- Serves the retention purge (blocks with a record older than the cutoff).
CREATE INDEX IF NOT EXISTS log_blocks_by_min_ts ON log_blocks (min_ts);

-- Serves a time range's first block (`--since`) without scanning older ones.
CREATE INDEX IF NOT EXISTS log_blocks_by_max_ts ON log_blocks (max_ts);

-- Serves "which segment files are still used" after a purge.
CREATE INDEX IF NOT EXISTS log_blocks_by_segment ON log_blocks (segment);

-- The blocks of each group, in id order: every query of one function (`unkai logs -f`, its
-- tail and "newest n") reads only the blocks that hold its records.
CREATE TABLE IF NOT EXISTS log_block_groups (
    log_group TEXT    NOT NULL,
    last_id   INTEGER NOT NULL,
    PRIMARY KEY (log_group, last_id)
) WITHOUT ROWID;

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
