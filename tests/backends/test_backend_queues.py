"""QueueStore conformance: SQS's primitives as the backend implements them."""

from __future__ import annotations

import asyncio

import pytest

from tests.backends.conftest import BackendTarget
from unkai.backends.base import Backend, NewMessage, ReceiveRequest

pytestmark = pytest.mark.anyio

DEDUP_MS = 300_000


def msgs(*bodies: str, group: str | None = None, delay_ms: int = 0) -> list[NewMessage]:
    return [
        NewMessage(f"id-{b}", b.encode(), None, delay_ms, group, f"d-{b}" if group else None)
        for b in bodies
    ]


def recv(queue: str, now: int, n: int = 10, vis: int = 30_000, **kw: object) -> ReceiveRequest:
    return ReceiveRequest(queue, n, vis, now, **kw)  # type: ignore[arg-type]


async def test_send_receive_delete_with_receipts(backend: Backend) -> None:
    # Given three messages sent to q and one to another queue
    sent = await backend.send_messages("q", msgs("a", "b", "c"), 1000, DEDUP_MS)
    await backend.send_messages("other", msgs("x"), 1000, DEDUP_MS)
    assert [s.sequence for s in sent] == sorted(s.sequence for s in sent)
    # When two are received
    got = await backend.receive_messages(recv("q", 2000, n=2))
    # Then they are the oldest, counted once, with a first-receive time and a receipt
    assert [m.body for m in got] == [b"a", b"b"]
    assert all(m.receive_count == 1 and m.first_receive_ms == 2000 for m in got)
    assert all(m.sent_ms == 1000 and m.receipt.startswith(f"{m.sequence}:") for m in got)
    counts = await backend.count_messages("q", 2000)
    assert (counts.visible, counts.in_flight, counts.delayed) == (1, 2, 0)
    assert counts.oldest_sent_ms == 1000
    # And a delete by receipt removes exactly those
    assert await backend.delete_messages("q", [m.receipt for m in got]) == 2
    assert await backend.delete_messages("q", [got[0].receipt]) == 0
    rest = await backend.receive_messages(recv("q", 2000))
    assert [m.body for m in rest] == [b"c"]
    # And a receipt of one queue deletes nothing in another
    assert await backend.delete_messages("other", [rest[0].receipt]) == 0


async def test_visibility_expiry_redelivers_with_a_new_receipt(backend: Backend) -> None:
    await backend.send_messages("q", msgs("a"), 0, DEDUP_MS)
    first = await backend.receive_messages(recv("q", 10, vis=100))
    # While invisible nothing is returned
    assert await backend.receive_messages(recv("q", 109)) == []
    # After the timeout it comes back, counted twice, first receive kept
    second = await backend.receive_messages(recv("q", 110))
    assert [m.receive_count for m in second] == [2]
    assert second[0].first_receive_ms == 10
    assert second[0].receipt != first[0].receipt
    # The stale receipt deletes nothing; the latest does
    assert await backend.delete_messages("q", [first[0].receipt]) == 0
    assert await backend.delete_messages("q", [second[0].receipt]) == 1


async def test_change_visibility(backend: Backend) -> None:
    await backend.send_messages("q", msgs("a", "b"), 0, DEDUP_MS)
    a, b = await backend.receive_messages(recv("q", 0, vis=1000))
    # a back at once, b extended
    assert await backend.change_visibility("q", [(a.receipt, 0), (b.receipt, 5000)], 10) == [
        True,
        True,
    ]
    assert [m.body for m in await backend.receive_messages(recv("q", 10))] == [b"a"]
    assert await backend.receive_messages(recv("q", 4000)) == []
    # A message not in flight cannot change visibility
    assert await backend.change_visibility("q", [(b.receipt, 10)], 6000) == [False]


async def test_delay_hides_until_due(backend: Backend) -> None:
    await backend.send_messages("q", msgs("late", delay_ms=500) + msgs("now"), 0, DEDUP_MS)
    assert (await backend.count_messages("q", 0)).delayed == 1
    assert [m.body for m in await backend.receive_messages(recv("q", 1))] == [b"now"]
    assert [m.body for m in await backend.receive_messages(recv("q", 500))] == [b"late"]


async def test_redrive_moves_after_max_receive_count(backend: Backend) -> None:
    await backend.send_messages("q", msgs("poison"), 0, DEDUP_MS)
    dlq = ("q-dlq", 2)
    for now in (0, 100):
        got = await backend.receive_messages(recv("q", now, vis=50, dead_letter=dlq))
        assert [m.receive_count for m in got] == [now // 100 + 1]
    # The third receive moves it instead of returning it
    assert await backend.receive_messages(recv("q", 200, vis=50, dead_letter=dlq)) == []
    moved = await backend.receive_messages(recv("q-dlq", 200))
    assert [(m.message_id, m.receive_count, m.sent_ms) for m in moved] == [("id-poison", 1, 0)]
    # And a move back puts it in the source again, fresh
    await backend.change_visibility("q-dlq", [(moved[0].receipt, 0)], 300)
    assert await backend.move_messages("q-dlq", "q", 10, 300) == 1
    back = await backend.receive_messages(recv("q", 300, dead_letter=dlq))
    assert [m.receive_count for m in back] == [1]


async def test_retention_expires_old_messages(backend: Backend) -> None:
    await backend.send_messages("q", msgs("old"), 0, DEDUP_MS)
    await backend.send_messages("q", msgs("new"), 1000, DEDUP_MS)
    got = await backend.receive_messages(recv("q", 1500, expired_before_ms=500))
    assert [m.body for m in got] == [b"new"]
    # The sweep deletes the expired prefix of a queue (send order is time order)
    await backend.send_messages("swept", msgs("older"), 0, DEDUP_MS)
    await backend.send_messages("swept", msgs("newer"), 1000, DEDUP_MS)
    assert await backend.expire_messages("swept", 500, 1500) == 1
    assert await backend.expire_messages("swept", 500, 1500) == 0
    assert (await backend.count_messages("swept", 1500)).oldest_sent_ms == 1000


async def test_fifo_groups_in_order_one_batch_in_flight(backend: Backend) -> None:
    # Given two groups interleaved
    await backend.send_messages("f", msgs("a1", "a2", group="A"), 0, DEDUP_MS)
    await backend.send_messages("f", msgs("b1", group="B"), 0, DEDUP_MS)
    await backend.send_messages("f", msgs("a3", group="A"), 0, DEDUP_MS)
    # When one receive takes two messages
    first = await backend.receive_messages(recv("f", 1, n=2, fifo=True))
    assert [m.body for m in first] == [b"a1", b"a2"]
    # Then group A is locked while they are in flight; B is free
    second = await backend.receive_messages(recv("f", 2, fifo=True))
    assert [m.body for m in second] == [b"b1"]
    assert await backend.receive_messages(recv("f", 3, fifo=True)) == []
    # And after deleting a1 (a2 still in flight) A stays locked
    await backend.delete_messages("f", [first[0].receipt])
    assert await backend.receive_messages(recv("f", 4, fifo=True)) == []
    await backend.delete_messages("f", [first[1].receipt])
    assert [m.body for m in await backend.receive_messages(recv("f", 5, fifo=True))] == [b"a3"]


async def test_fifo_redelivers_in_order_after_visibility_expiry(backend: Backend) -> None:
    await backend.send_messages("f", msgs("1", "2", "3", group="G"), 0, DEDUP_MS)
    got = await backend.receive_messages(recv("f", 0, n=2, vis=100, fifo=True))
    assert [m.body for m in got] == [b"1", b"2"]
    again = await backend.receive_messages(recv("f", 100, fifo=True))
    assert [m.body for m in again] == [b"1", b"2", b"3"]


async def test_fifo_deduplication_within_window(backend: Backend) -> None:
    first = await backend.send_messages("f", msgs("x", group="G"), 0, DEDUP_MS)
    dup = await backend.send_messages(
        "f", [NewMessage("other-id", b"x2", None, 0, "G", "d-x")], 1000, DEDUP_MS
    )
    assert dup[0].duplicate and dup[0].message_id == first[0].message_id
    assert dup[0].sequence == first[0].sequence
    assert (await backend.count_messages("f", 1000)).visible == 1
    # After the window the same id is a new message
    later = await backend.send_messages(
        "f", [NewMessage("new-id", b"x3", None, 0, "G", "d-x")], DEDUP_MS + 1, DEDUP_MS
    )
    assert not later[0].duplicate and later[0].message_id == "new-id"


async def test_purge_and_attributes_round_trip(backend: Backend) -> None:
    await backend.send_messages(
        "q", [NewMessage("m", b"body", b'{"k":1}'), *msgs("a", "b")], 0, DEDUP_MS
    )
    got = await backend.receive_messages(recv("q", 0, n=1))
    assert got[0].attributes == b'{"k":1}'
    assert await backend.purge_queue("q") == 3
    assert (await backend.count_messages("q", 0)).oldest_sent_ms is None


async def test_concurrent_receives_never_share_a_message(backend: Backend) -> None:
    await backend.send_messages("q", msgs(*(str(i) for i in range(200))), 0, DEDUP_MS)
    batches = await asyncio.gather(*(backend.receive_messages(recv("q", 1)) for _ in range(30)))
    ids = [m.message_id for batch in batches for m in batch]
    assert len(ids) == len(set(ids)) == 200


async def test_queue_messages_survive_reopen(target: BackendTarget) -> None:
    backend = target.make()
    await backend.open()
    await backend.send_messages("q", msgs("kept"), 0, DEDUP_MS)
    got = await backend.receive_messages(recv("q", 0, vis=10))
    await backend.close()
    again = target.make()
    await again.open()
    try:
        back = await again.receive_messages(recv("q", 20))
        assert [(m.body, m.receive_count) for m in back] == [(b"kept", 2)]
        assert back[0].receipt != got[0].receipt
    finally:
        await again.close()


async def test_a_receive_that_sets_messages_aside_returns_each_message_once(
    backend: Backend,
) -> None:
    # Given X received once (maxReceiveCount 1: it moves at its next receive) and Y fresh
    await backend.send_messages("q", msgs("x", "y"), 0, DEDUP_MS)
    dlq = ("q-dlq", 1)
    first = await backend.receive_messages(recv("q", 0, n=1, vis=0, dead_letter=dlq))
    assert [m.body for m in first] == [b"x"]
    # When two are asked for, X moves to the DLQ and only Y is returned, once
    got = await backend.receive_messages(recv("q", 1, n=2, dead_letter=dlq))
    assert [(m.body, m.receive_count) for m in got] == [(b"y", 1)]


async def test_a_fifo_redrive_restarts_retention_in_the_dead_letter_queue(backend: Backend) -> None:
    # Given a FIFO message received once, with a maxReceiveCount of 1
    await backend.send_messages("f.fifo", msgs("poison", group="G"), 0, DEDUP_MS)
    dlq = ("f-dlq.fifo", 1)
    await backend.receive_messages(recv("f.fifo", 10, vis=50, fifo=True, dead_letter=dlq))
    # When the next receive moves it to the dead-letter queue
    assert await backend.receive_messages(recv("f.fifo", 100, fifo=True, dead_letter=dlq)) == []
    # Then it was enqueued there at the move (SQS resets it for FIFO; standard keeps it)
    moved = await backend.receive_messages(recv("f-dlq.fifo", 100, fifo=True))
    assert [m.sent_ms for m in moved] == [100]


async def test_deduplication_scoped_to_the_message_group(backend: Backend) -> None:
    def message(message_id: str, group: str, per_group: bool) -> NewMessage:
        return NewMessage(message_id, b"ping", None, 0, group, "d-ping", per_group)

    # Given the same deduplication id in two groups, scoped per group
    a = await backend.send_messages("g.fifo", [message("a", "A", True)], 0, DEDUP_MS)
    b = await backend.send_messages("g.fifo", [message("b", "B", True)], 0, DEDUP_MS)
    # Then both are messages, while a repeat within a group is a duplicate
    assert not a[0].duplicate and not b[0].duplicate
    again = await backend.send_messages("g.fifo", [message("a2", "A", True)], 0, DEDUP_MS)
    assert again[0].duplicate and again[0].message_id == "a"
    # And scoped to the queue, the second group's message is the first one's duplicate
    c = await backend.send_messages("q.fifo", [message("c", "A", False)], 0, DEDUP_MS)
    d = await backend.send_messages("q.fifo", [message("d", "B", False)], 0, DEDUP_MS)
    assert not c[0].duplicate and d[0].duplicate


async def test_returned_messages_are_visible_without_a_used_receive(backend: Backend) -> None:
    # Given two messages received once
    await backend.send_messages("q", msgs("a", "b"), 0, DEDUP_MS)
    got = await backend.receive_messages(recv("q", 10, vis=30_000))
    # When one is given back
    assert await backend.return_messages("q", [got[1].receipt], 20) == 1
    assert await backend.return_messages("q", [got[1].receipt], 20) == 0  # not in flight now
    # Then it is visible at once, and the next receive is its first again
    again = await backend.receive_messages(recv("q", 20))
    assert [(m.body, m.receive_count) for m in again] == [(b"b", 1)]


async def test_dropping_a_queue_forgets_its_deduplication_ids(backend: Backend) -> None:
    await backend.send_messages("f.fifo", msgs("x", group="G"), 0, DEDUP_MS)
    assert await backend.drop_queue("f.fifo") == 1
    # A queue of the same name made again takes the same id as a new message
    sent = await backend.send_messages(
        "f.fifo", [NewMessage("new", b"x", None, 0, "G", "d-x")], 1000, DEDUP_MS
    )
    assert not sent[0].duplicate
    # While purge_queue deletes messages only
    await backend.send_messages("p.fifo", msgs("y", group="G"), 0, DEDUP_MS)
    await backend.purge_queue("p.fifo")
    repeat = await backend.send_messages(
        "p.fifo", [NewMessage("n2", b"y", None, 0, "G", "d-y")], 1000, DEDUP_MS
    )
    assert repeat[0].duplicate
