"""MetadataStore conformance: revisions, optimistic checks, atomic commits, delete, list."""

from __future__ import annotations

import asyncio

import pytest

from unkai.backends.base import DOCUMENTS_PAGE, Backend, Document, Write, each_document
from unkai.errors import ConfigError, Conflict

pytestmark = pytest.mark.anyio


async def test_get_of_a_missing_key_is_none(backend: Backend) -> None:
    assert await backend.get("function", "nope") is None


async def test_put_stores_the_value_at_revision_1(backend: Backend) -> None:
    # Given a nested JSON value with unicode
    value = {"name": "héllo ☃", "n": 3, "list": [1, 2.5, None, True], "nested": {"a": {}}}
    # When it is written unconditionally
    await backend.commit([Write("function", "dev/hello", value)])
    # Then it reads back equal, at revision 1
    assert await backend.get("function", "dev/hello") == Document("function", "dev/hello", value, 1)


async def test_each_write_increments_the_revision(backend: Backend) -> None:
    for n in range(1, 4):
        await backend.commit([Write("k", "a", {"n": n})])
        doc = await backend.get("k", "a")
        assert doc is not None
        assert (doc.revision, doc.value) == (n, {"n": n})


async def test_expected_revision_0_creates_a_missing_key(backend: Backend) -> None:
    await backend.commit([Write("k", "a", {"v": 1}, expected_revision=0)])
    doc = await backend.get("k", "a")
    assert doc is not None and doc.revision == 1


async def test_expected_revision_0_conflicts_with_an_existing_key(backend: Backend) -> None:
    # Given a key at revision 1
    await backend.commit([Write("k", "a", {"v": 1})])
    # When another writer tries to create it
    with pytest.raises(Conflict, match="already exists at revision 1"):
        await backend.commit([Write("k", "a", {"v": 2}, expected_revision=0)])
    # Then the first value stays
    assert await backend.get("k", "a") == Document("k", "a", {"v": 1}, 1)


async def test_matching_expected_revision_writes(backend: Backend) -> None:
    await backend.commit([Write("k", "a", {"v": 1})])
    await backend.commit([Write("k", "a", {"v": 2}, expected_revision=1)])
    assert await backend.get("k", "a") == Document("k", "a", {"v": 2}, 2)


async def test_stale_expected_revision_conflicts_and_writes_nothing(backend: Backend) -> None:
    await backend.commit([Write("k", "a", {"v": 1})])
    await backend.commit([Write("k", "a", {"v": 2})])
    with pytest.raises(Conflict, match="is at revision 2, expected 1"):
        await backend.commit([Write("k", "a", {"v": 3}, expected_revision=1)])
    assert await backend.get("k", "a") == Document("k", "a", {"v": 2}, 2)


async def test_expected_revision_of_a_missing_key_conflicts(backend: Backend) -> None:
    with pytest.raises(Conflict, match="does not exist"):
        await backend.commit([Write("k", "a", {"v": 1}, expected_revision=4)])
    assert await backend.get("k", "a") is None


async def test_a_failed_check_fails_the_whole_commit(backend: Backend) -> None:
    # Given an existing key
    await backend.commit([Write("k", "existing", {"v": 1})])
    # When one commit writes two new keys, deletes the existing one and fails a check last
    writes = [
        Write("k", "new1", {"v": 1}),
        Write("k", "existing", None),
        Write("other", "new2", {"v": 2}, expected_revision=0),
        Write("k", "missing", {"v": 3}, expected_revision=7),
    ]
    with pytest.raises(Conflict):
        await backend.commit(writes)
    # Then nothing of it happened
    assert await backend.get("k", "new1") is None
    assert await backend.get("other", "new2") is None
    assert await backend.get("k", "existing") == Document("k", "existing", {"v": 1}, 1)


async def test_a_multi_write_commit_applies_every_write(backend: Backend) -> None:
    await backend.commit([Write("k", "b", {"v": 0})])
    await backend.commit(
        [
            Write("k", "a", {"v": 1}, expected_revision=0),
            Write("k", "b", {"v": 2}, expected_revision=1),
            Write("j", "c", {"v": 3}),
        ]
    )
    assert [d.revision for d in await backend.list("k")] == [1, 2]
    assert await backend.get("j", "c") == Document("j", "c", {"v": 3}, 1)


async def test_writes_to_one_key_in_one_commit_apply_in_order(backend: Backend) -> None:
    await backend.commit(
        [Write("k", "a", {"v": 1}, expected_revision=0), Write("k", "a", {"v": 2}, 1)]
    )
    assert await backend.get("k", "a") == Document("k", "a", {"v": 2}, 2)


async def test_empty_commit_is_a_no_op(backend: Backend) -> None:
    await backend.commit([])
    assert await backend.list("k") == []


async def test_negative_expected_revision_is_rejected(backend: Backend) -> None:
    with pytest.raises(ConfigError, match="expected_revision"):
        await backend.commit([Write("k", "a", {"v": 1}, expected_revision=-1)])


async def test_delete_removes_the_key(backend: Backend) -> None:
    await backend.commit([Write("k", "a", {"v": 1}), Write("k", "b", {"v": 1})])
    await backend.commit([Write("k", "a", None)])
    assert await backend.get("k", "a") is None
    assert [d.key for d in await backend.list("k")] == ["b"]


async def test_delete_of_a_missing_key_is_a_no_op(backend: Backend) -> None:
    await backend.commit([Write("k", "a", None)])
    await backend.commit([Write("k", "a", None, expected_revision=0)])
    assert await backend.get("k", "a") is None


async def test_delete_checks_the_expected_revision(backend: Backend) -> None:
    await backend.commit([Write("k", "a", {"v": 1})])
    await backend.commit([Write("k", "a", {"v": 2})])
    with pytest.raises(Conflict):
        await backend.commit([Write("k", "a", None, expected_revision=1)])
    assert await backend.get("k", "a") is not None
    await backend.commit([Write("k", "a", None, expected_revision=2)])
    assert await backend.get("k", "a") is None


async def test_a_key_created_again_after_delete_starts_at_revision_1(backend: Backend) -> None:
    await backend.commit([Write("k", "a", {"v": 1})])
    await backend.commit([Write("k", "a", {"v": 2})])
    await backend.commit([Write("k", "a", None)])
    await backend.commit([Write("k", "a", {"v": 3}, expected_revision=0)])
    assert await backend.get("k", "a") == Document("k", "a", {"v": 3}, 1)


async def test_list_is_ordered_by_key_and_filtered_by_kind_and_prefix(backend: Backend) -> None:
    # Given keys written out of order, in two kinds
    keys = ["dev/b", "prod/a", "dev/a", "dev", "dev/a/x", "deva", "de"]
    await backend.commit([Write("fn", k, {"k": k}) for k in keys])
    await backend.commit([Write("route", "dev/z", {"k": "route"})])
    # Then list orders by key, keeps to the kind, and matches the prefix exactly
    assert [d.key for d in await backend.list("fn")] == sorted(keys)
    assert [d.key for d in await backend.list("fn", "dev/")] == ["dev/a", "dev/a/x", "dev/b"]
    assert [d.key for d in await backend.list("fn", "dev")] == [
        "dev",
        "dev/a",
        "dev/a/x",
        "dev/b",
        "deva",
    ]
    assert [d.key for d in await backend.list("fn", "dev/a/x")] == ["dev/a/x"]
    assert await backend.list("fn", "zzz") == []
    assert [d.value for d in await backend.list("route")] == [{"k": "route"}]


async def test_list_prefix_matches_non_ascii_and_the_highest_code_point(backend: Backend) -> None:
    top = "\U0010ffff"
    keys = ["é", "é/1", "éa", "ê", "a" + top, "a" + top + "b", "b", "\ud7ff", "\ue000"]
    await backend.commit([Write("fn", k, {}) for k in keys])
    assert [d.key for d in await backend.list("fn", "é")] == ["é", "é/1", "éa"]
    assert [d.key for d in await backend.list("fn", "a" + top)] == ["a" + top, "a" + top + "b"]
    assert [d.key for d in await backend.list("fn", "\ud7ff")] == ["\ud7ff"]
    assert [d.key for d in await backend.list("fn")] == sorted(keys)


async def test_concurrent_commits_of_distinct_keys_all_land(backend: Backend) -> None:
    await asyncio.gather(
        *(backend.commit([Write("k", f"{i:04d}", {"i": i}, 0)]) for i in range(500))
    )
    docs = await backend.list("k")
    assert [d.value["i"] for d in docs] == list(range(500))


async def test_concurrent_optimistic_increments_lose_no_update(backend: Backend) -> None:
    # Given a counter
    await backend.commit([Write("counter", "c", {"n": 0}, expected_revision=0)])

    async def increment() -> int:
        conflicts = 0
        while True:
            doc = await backend.get("counter", "c")
            assert doc is not None
            try:
                await backend.commit(
                    [Write("counter", "c", {"n": doc.value["n"] + 1}, doc.revision)]
                )
            except Conflict:
                conflicts += 1
                continue
            return conflicts

    # When 40 tasks each increment it 5 times, retrying on Conflict
    async def worker() -> int:
        return sum([await increment() for _ in range(5)])

    conflicts = await asyncio.gather(*(worker() for _ in range(40)))
    # Then every increment counted exactly once, and the checks did reject stale writes
    assert await backend.get("counter", "c") == Document("counter", "c", {"n": 200}, 201)
    assert sum(conflicts) > 0


async def test_list_pages_with_after_and_limit(backend: Backend) -> None:
    # Given 70 documents of a prefix, among others
    keys = [f"ev/{i:03d}" for i in range(70)]
    await backend.commit([Write("fn", k, {"k": k}) for k in reversed(keys)])
    await backend.commit([Write("fn", "ew", {}), Write("fn", "eu", {}), Write("other", "ev/1", {})])
    # Then pages of 32 after the last key seen give every document once, in key order
    seen: list[str] = []
    after: str | None = None
    while page := await backend.list("fn", "ev/", after=after, limit=32):
        assert len(page) <= 32
        seen += [d.key for d in page]
        after = page[-1].key
    assert seen == keys
    # And `after` alone, and a limit alone, keep to the prefix and the order
    assert [d.key for d in await backend.list("fn", after="ev/068")] == ["ev/069", "ew"]
    assert [d.key for d in await backend.list("fn", limit=2)] == ["eu", "ev/000"]
    with pytest.raises(ConfigError, match="limit"):
        await backend.list("fn", limit=0)


async def test_each_document_reads_a_kind_page_by_page(backend: Backend) -> None:
    keys = [f"k{i:03d}" for i in range(DOCUMENTS_PAGE * 2 + 5)]
    await backend.commit([Write("pending", k, {"n": i}) for i, k in enumerate(keys)])
    got = [d async for d in each_document(backend, "pending")]
    assert [d.key for d in got] == keys
    assert [d.value["n"] for d in got] == list(range(len(keys)))
    assert [d async for d in each_document(backend, "none")] == []
