"""What only PostgreSQL has: the test server itself, schema migrations, and several processes (pools)
writing at once. The races are forced into a known interleaving with a third connection holding a row lock,
so each test proves one ordering instead of hoping to hit it."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Awaitable, Iterator
from pathlib import Path
from typing import Self, TypeVar

import asyncpg
import pytest

from stores.errors import Conflict
from stores.metadata import ContextRequest, ObjectAllocation, ObjectRegistration, SegmentCommit, StoredSegment
from stores.postgres import MIGRATIONS, PostgresMetadataStore
from tests.pg_server import PostgresServer

T = TypeVar("T")
S = 1_000_000_000
STORAGE = "storage-1"


@pytest.fixture(scope="session")
def pg_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PostgresServer]:
    server = PostgresServer.start(tmp_path_factory.mktemp("postgres"))
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
async def dsn(pg_server: PostgresServer) -> str:
    return await pg_server.fresh_database()


@pytest.fixture
async def two_workers(dsn: str) -> AsyncIterator[tuple[PostgresMetadataStore, PostgresMetadataStore]]:
    """Two stores with their own pools on one database, as two agent workers have."""
    first, second = PostgresMetadataStore(dsn), PostgresMetadataStore(dsn)
    await asyncio.gather(first.open(), second.open())
    try:
        yield first, second
    finally:
        await asyncio.gather(first.close(), second.close())


def flow_doc(flow_id: str, source_id: str) -> dict[str, object]:
    return {"id": flow_id, "source_id": source_id, "format": "urn:x-nmos:format:video", "container": "video/mp2t"}


def seg(start_s: int, object_id: str) -> StoredSegment:
    timerange = f"[{start_s}:0_{start_s + 1}:0)"
    return StoredSegment(start_s * S, (start_s + 1) * S, object_id, None, timerange,
                         f'{{"object_id":"{object_id}","timerange":"{timerange}"}}'.encode())


def first_use(segment: StoredSegment, flow_id: str) -> ObjectRegistration:
    return ObjectRegistration(segment.object_id, STORAGE, flow_id, segment.object_timerange or "", None, None,
                              "video/mp2t", None, 1)


async def flow_using(store: PostgresMetadataStore, object_id: str, *, register: bool) -> str:
    """A new flow with one segment using `object_id` (registering it on first use)."""
    flow_id = str(uuid.uuid4())
    await store.put_flow(flow_doc(flow_id, str(uuid.uuid4())), 1)
    segment = seg(0, object_id)
    await store.commit_segments([SegmentCommit(flow_id, [segment], [first_use(segment, flow_id)] if register else [])])
    return flow_id


class RowLock:
    """A third session holding a row lock, so the stores' statements queue up behind it in a known order."""

    def __init__(self, dsn: str) -> None:
        self.dsn = dsn

    async def __aenter__(self) -> Self:
        self.conn = await asyncpg.connect(self.dsn)
        self.tx = self.conn.transaction()
        await self.tx.start()
        return self

    async def lock(self, table: str, row_id: str, mode: str) -> None:
        assert await self.conn.fetchval(f"SELECT 1 FROM {table} WHERE id = $1 {mode}", row_id) == 1

    async def waiters(self, count: int) -> None:
        """Wait until `count` other sessions of this database are blocked on a lock."""
        for _ in range(500):
            waiting = await self.conn.fetchval(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
                " AND wait_event_type = 'Lock'")
            if waiting >= count:
                return
            await asyncio.sleep(0.01)
        raise AssertionError(f"expected {count} sessions waiting for a lock")

    async def release(self) -> None:
        await self.tx.rollback()

    async def __aexit__(self, *exc: object) -> None:
        await self.conn.close()


async def started(coro: Awaitable[T]) -> asyncio.Task[T]:
    task = asyncio.ensure_future(coro)
    await asyncio.sleep(0.05)  # let it send its statements
    return task


async def dangling_segments(dsn: str) -> int:
    conn = await asyncpg.connect(dsn)
    try:
        return await conn.fetchval("SELECT count(*) FROM segments s"
                                   " WHERE NOT EXISTS (SELECT 1 FROM objects o WHERE o.id = s.object_id)")
    finally:
        await conn.close()


# -------------------------------------------------------------------------------------------- the server


async def test_the_server_starts_serves_and_stops_for_good(tmp_path: Path) -> None:
    server = PostgresServer.start(tmp_path)
    try:
        conn = await asyncpg.connect(server.dsn())
        assert await conn.fetchval("SELECT 1") == 1
        await conn.close()
        assert (await server.fresh_database()) != (await server.fresh_database())
    finally:
        server.stop()
    server.stop()  # again: nothing to do
    with pytest.raises(OSError):
        await asyncpg.connect(server.dsn(), timeout=5)


# -------------------------------------------------------------------------------------------- migrations


async def test_open_creates_the_schema_on_a_fresh_database(dsn: str) -> None:
    store = PostgresMetadataStore(dsn)
    await store.open()
    try:
        tables = {r["tablename"] for r in await store.pool.fetch(
            "SELECT tablename FROM pg_tables WHERE schemaname = current_schema()")}
        assert {"flows", "sources", "segments", "objects", "applied_events", "schema_version"} <= tables
        versions = await store.pool.fetch("SELECT version FROM schema_version ORDER BY version")
        assert [r["version"] for r in versions] == list(range(1, len(MIGRATIONS) + 1))
    finally:
        await store.close()


async def test_stores_opening_together_or_again_apply_each_migration_once(dsn: str) -> None:
    stores = [PostgresMetadataStore(dsn, max_size=2) for _ in range(3)]
    await asyncio.gather(*(s.open() for s in stores))
    await stores[0].close()
    await stores[0].open()  # reopening an up-to-date database
    try:
        versions = await stores[1].pool.fetch("SELECT version FROM schema_version ORDER BY version")
        assert [r["version"] for r in versions] == list(range(1, len(MIGRATIONS) + 1))
        await stores[1].put_flow(flow_doc("f", "s"), 5)
        assert (await stores[2].get_flow("f")).created_ns == 5
    finally:
        await asyncio.gather(*(s.close() for s in stores))


class FirstReleaseStore(PostgresMetadataStore):
    """The store as it was before objects had checksums and controlled copies."""

    migrations = MIGRATIONS[:1]


async def test_an_additive_migration_keeps_what_an_older_schema_stored(dsn: str) -> None:
    old = FirstReleaseStore(dsn)
    await old.open()
    await old.put_flow(flow_doc("f", "s"), 5)
    await old.allocate_objects([ObjectAllocation("obj", STORAGE, "f", "video/mp2t", 7)])
    await old.close()

    store = PostgresMetadataStore(dsn)
    await store.open()
    try:
        assert await store.pool.fetchval("SELECT max(version) FROM schema_version") == len(MIGRATIONS)
        assert (await store.get_flow("f")).doc == flow_doc("f", "s")
        record = (await store.get_objects(["obj"]))["obj"]
        assert (record.created_ns, record.checksum, record.copies) == (7, None, ())
        await store.add_controlled_copy("obj", "storage-2")  # the new column works on old rows
        assert (await store.get_objects(["obj"]))["obj"].storage_ids == (STORAGE, "storage-2")
    finally:
        await store.close()


class NextReleaseStore(PostgresMetadataStore):
    migrations = (*MIGRATIONS, ("ALTER TABLE flows ADD COLUMN IF NOT EXISTS next_release_note text",))


async def test_a_database_a_newer_release_migrated_still_opens(dsn: str) -> None:
    newer = NextReleaseStore(dsn)
    await newer.open()
    await newer.put_flow(flow_doc("f", "s"), 5)
    await newer.close()
    store = PostgresMetadataStore(dsn)
    await store.open()  # a rolling upgrade: an old replica restarts after a new one migrated
    try:
        assert (await store.get_flow("f")).created_ns == 5
    finally:
        await store.close()


# -------------------------------------------------------------------------------------------- two workers


async def test_two_flows_dropping_their_last_references_together_drop_the_object_once(
        dsn: str, two_workers: tuple[PostgresMetadataStore, PostgresMetadataStore]) -> None:
    first, second = two_workers
    a = await flow_using(first, "shared", register=True)
    b = await flow_using(second, "shared", register=False)
    async with RowLock(dsn) as blocker:
        await blocker.lock("objects", "shared", "FOR KEY SHARE")  # both deletes get as far as the object lock
        deleting = [await started(first.delete_segments(a, 0, 10 * S, None, 2)),
                    await started(second.delete_segments(b, 0, 10 * S, None, 2))]
        await blocker.waiters(2)
        await blocker.release()
        deletions = await asyncio.gather(*deleting)
    assert [d.segments for d in deletions] == [1, 1]
    assert sorted(len(d.unreferenced_objects) for d in deletions) == [0, 1]
    assert await first.get_objects(["shared"]) == {}


async def test_unforced_concurrent_last_reference_deletes_never_keep_an_unused_object(
        two_workers: tuple[PostgresMetadataStore, PostgresMetadataStore]) -> None:
    first, second = two_workers
    for round_ in range(10):
        object_id = f"shared-{round_}"
        a = await flow_using(first, object_id, register=True)
        b = await flow_using(second, object_id, register=False)
        deletions = await asyncio.gather(first.delete_segments(a, 0, 10 * S, None, 2),
                                         second.delete_segments(b, 0, 10 * S, None, 2))
        assert sum(len(d.unreferenced_objects) for d in deletions) == 1
        assert await first.get_objects([object_id]) == {}


async def test_a_reuse_committed_while_the_last_reference_is_being_deleted_keeps_the_object(
        dsn: str, two_workers: tuple[PostgresMetadataStore, PostgresMetadataStore]) -> None:
    first, second = two_workers
    a = await flow_using(first, "shared", register=True)
    b = str(uuid.uuid4())
    await second.put_flow(flow_doc(b, str(uuid.uuid4())), 1)
    async with RowLock(dsn) as blocker:
        await blocker.lock("objects", "shared", "FOR KEY SHARE")
        deleting = await started(first.delete_segments(a, 0, 10 * S, None, 2))
        await blocker.waiters(1)  # a's segment is gone (uncommitted); the delete waits to count references
        await second.commit_segments([SegmentCommit(b, [seg(5, "shared")])])  # not blocked by a share lock
        await blocker.release()
        deletion = await deleting
    assert deletion.segments == 1 and deletion.unreferenced_objects == []
    assert set(await first.get_objects(["shared"])) == {"shared"}
    assert await dangling_segments(dsn) == 0


async def test_a_reuse_waiting_behind_the_last_reference_delete_is_refused(
        dsn: str, two_workers: tuple[PostgresMetadataStore, PostgresMetadataStore]) -> None:
    first, second = two_workers
    a = await flow_using(first, "shared", register=True)
    b = str(uuid.uuid4())
    await second.put_flow(flow_doc(b, str(uuid.uuid4())), 1)
    context = await second.segment_context([ContextRequest(b, {"e1"}, {"shared"}, (5 * S, 6 * S))])
    assert context[b].objects["shared"].registered  # the writer plans a reuse of a live object
    async with RowLock(dsn) as blocker:
        await blocker.lock("objects", "shared", "FOR UPDATE")
        deleting = await started(first.delete_segments(a, 0, 10 * S, None, 2))
        await blocker.waiters(1)
        reusing = await started(second.commit_segments([SegmentCommit(b, [seg(5, "shared")], event_ids=["e1"])]))
        await blocker.waiters(2)  # queued behind the delete
        await blocker.release()
        deletion = await deleting
        with pytest.raises(Conflict):
            await reusing
    assert [o.object_id for o in deletion.unreferenced_objects] == ["shared"]
    assert (await second.get_flow(b)).segment_count == 0
    assert await second.applied_event_ids(b, ["e1"]) == set()  # refused as a whole: the event can be retried
    assert await dangling_segments(dsn) == 0


async def test_a_reuse_planned_before_the_object_was_dropped_is_refused(
        dsn: str, two_workers: tuple[PostgresMetadataStore, PostgresMetadataStore]) -> None:
    first, second = two_workers
    a = await flow_using(first, "shared", register=True)
    b = str(uuid.uuid4())
    await second.put_flow(flow_doc(b, str(uuid.uuid4())), 1)
    await second.segment_context([ContextRequest(b, set(), {"shared"}, (5 * S, 6 * S))])
    await first.delete_segments(a, 0, 10 * S, None, 2)
    with pytest.raises(Conflict):
        await second.commit_segments([SegmentCommit(b, [seg(5, "shared")])])
    assert await dangling_segments(dsn) == 0


async def test_a_flow_created_while_its_source_loses_its_last_flow_gets_the_source_back(
        dsn: str, two_workers: tuple[PostgresMetadataStore, PostgresMetadataStore]) -> None:
    first, second = two_workers
    await first.put_flow(flow_doc("old", "src"), 1)
    async with RowLock(dsn) as blocker:
        await blocker.lock("sources", "src", "FOR UPDATE")
        deleting = await started(first.delete_flow("old"))
        await blocker.waiters(1)
        creating = await started(second.put_flow(flow_doc("new", "src"), 2))
        await blocker.waiters(2)
        await blocker.release()
        deletion = await deleting
        assert await creating is True
    assert deletion.source_deleted == "src"  # announced as deleted, then created again by the new flow
    assert (await second.get_source("src")).created_ns == 2
    assert (await second.get_flow("new")).doc["source_id"] == "src"


async def test_a_flow_created_before_the_last_flow_delete_counts_keeps_the_source(
        dsn: str, two_workers: tuple[PostgresMetadataStore, PostgresMetadataStore]) -> None:
    first, second = two_workers
    await first.put_flow(flow_doc("old", "src"), 1)
    async with RowLock(dsn) as blocker:
        await blocker.lock("sources", "src", "FOR KEY SHARE")
        deleting = await started(first.delete_flow("old"))
        await blocker.waiters(1)
        assert await second.put_flow(flow_doc("new", "src"), 2) is True
        await blocker.release()
        deletion = await deleting
    assert deletion.source_deleted is None
    assert (await second.get_source("src")).created_ns == 1


# -------------------------------------------------------------------------------------------- stricter than SQLite


async def test_delete_flow_keeps_its_allocation_another_flow_uses_as_init_object(
        two_workers: tuple[PostgresMetadataStore, PostgresMetadataStore]) -> None:
    """Init objects are never registered, so 'unregistered allocation of the flow' alone would drop one in use."""
    first, second = two_workers
    await first.put_flow(flow_doc("owner", "s1"), 1)
    await first.allocate_objects([ObjectAllocation("init", STORAGE, "owner", None, 1),
                                  ObjectAllocation("spare", STORAGE, "owner", None, 1)])
    await second.put_flow(flow_doc("user", "s2"), 1)
    media = StoredSegment(0, S, "m", "init", "[0:0_1:0)", b"{}")
    await second.commit_segments([SegmentCommit("user", [media], [first_use(media, "user")])])
    deletion = await first.delete_flow("owner")
    assert [o.object_id for o in deletion.unreferenced_objects] == ["spare"]
    assert set(await first.get_objects(["init", "spare"])) == {"init"}
