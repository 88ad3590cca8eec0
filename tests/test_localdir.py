"""LocalMediaStore against real files: key safety, atomic replacement, ranges, batches, errors."""

from __future__ import annotations

import asyncio
import os
import re
import threading
from pathlib import Path

import pytest

from stores.errors import MediaNotFound
from stores.localdir import CHUNK_SIZE, LocalMediaStore
from stores.media import MediaInfo

KEYS = [
    "plain",
    "flows/3f2a/segments/0001.ts",
    "with space/and  two",
    "ünïcødé/片段/🎞.mp4",
    "..",
    ".",
    "../../../../etc/passwd",
    "/absolute/looking",
    "a/../b",
    "nul\x00and\nnewline",
    "%2F%41?#&=",
    "",
    "k" * 5000,
]
OBJECT_NAME = re.compile(r"[0-9a-f]{64}")


@pytest.fixture
async def store(tmp_path: Path):
    s = LocalMediaStore(tmp_path / "media")
    yield s
    await s.close()


async def read_all(store: LocalMediaStore, key: str) -> bytes:
    size = (await store.info(key)).size
    return b"".join([chunk async for chunk in store.read_range(key, 0, size)])


def files_under(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if not p.is_dir()]


@pytest.mark.parametrize("key", KEYS)
async def test_put_then_read_returns_identical_bytes_for_any_key(store: LocalMediaStore, key: str) -> None:
    data = os.urandom(3000) + key.encode("utf-8", "surrogatepass")
    assert await store.put(key, data) == MediaInfo(key=key, size=len(data))
    assert await store.exists(key)
    assert await store.info(key) == MediaInfo(key=key, size=len(data))
    assert await read_all(store, key) == data


async def test_keys_never_become_paths_and_no_temporary_files_remain(store: LocalMediaStore) -> None:
    for i, key in enumerate(KEYS):
        await store.put(key, b"object %d" % i)
    files = files_under(store.root)
    assert len(files) == len(KEYS)
    for f in files:
        relative = f.relative_to(store.root)  # raises if anything escaped the root
        assert len(relative.parts) == 3 and OBJECT_NAME.fullmatch(relative.name)
        assert relative.parts[:2] == (relative.name[:2], relative.name[2:4])
    for i, key in enumerate(KEYS):  # and no two keys share an object
        assert await read_all(store, key) == b"object %d" % i


async def test_put_replaces_earlier_bytes(store: LocalMediaStore) -> None:
    await store.put("k", b"first version, longer")
    await store.put("k", b"second")
    assert await read_all(store, "k") == b"second"
    assert len(files_under(store.root)) == 1


async def test_empty_object_round_trips(store: LocalMediaStore) -> None:
    await store.put("empty", b"")
    assert await store.info("empty") == MediaInfo(key="empty", size=0)
    assert [c async for c in store.read_range("empty", 0, 0)] == []


async def test_put_many_stores_every_object_durably_named(store: LocalMediaStore) -> None:
    items = [(f"flows/f/segments/{i}", os.urandom(4096)) for i in range(300)] + [(k, k.encode()) for k in KEYS]
    infos = await store.put_many(items)
    assert infos == [MediaInfo(key=k, size=len(v)) for k, v in items]
    for key, data in items:
        assert await read_all(store, key) == data
    assert len(files_under(store.root)) == len(items)


async def test_put_many_with_repeated_key_keeps_the_last_item(store: LocalMediaStore) -> None:
    infos = await store.put_many([("dup", b"one"), ("other", b"x"), ("dup", b"three")])
    # Every item reports what is stored under its key afterwards.
    assert infos == [MediaInfo("dup", 5), MediaInfo("other", 1), MediaInfo("dup", 5)]
    assert await read_all(store, "dup") == b"three"


async def test_put_many_of_nothing_is_a_no_op(store: LocalMediaStore) -> None:
    assert await store.put_many([]) == []


async def test_put_many_writes_files_concurrently(store: LocalMediaStore) -> None:
    """Two writes must be in progress at once for the barrier to open (it fails if they never are)."""
    barrier = threading.Barrier(2, timeout=10)
    write_file = store._write_file

    def meeting_write(directory: str, path: str, data: bytes, *rest: object) -> None:
        if data.startswith(b"meet"):
            barrier.wait()
        write_file(directory, path, data, *rest)

    store._write_file = meeting_write  # type: ignore[method-assign]
    items = [(f"k{i}", (b"meet" if i in (0, 299) else b"") + b"%d" % i) for i in range(300)]
    await store.put_many(items)
    for key, data in items:
        assert await read_all(store, key) == data


async def test_put_many_reports_a_failed_item_after_storing_the_others(store: LocalMediaStore) -> None:
    items: list = [("good-1", b"a"), ("bad", "not bytes"), ("good-2", b"b")]
    with pytest.raises(TypeError):
        await store.put_many(items)
    assert await read_all(store, "good-1") == b"a"
    assert await read_all(store, "good-2") == b"b"
    assert not await store.exists("bad")
    assert len(files_under(store.root)) == 2  # the failed item's temporary file is gone


async def test_failed_put_leaves_no_object_and_no_temporary_file(store: LocalMediaStore) -> None:
    with pytest.raises(TypeError):
        await store.put("k", "not bytes")  # type: ignore[arg-type]
    assert not await store.exists("k")
    assert files_under(store.root) == []


async def test_read_range_streams_the_requested_slice_in_bounded_chunks(store: LocalMediaStore) -> None:
    data = os.urandom(3 * CHUNK_SIZE + 17)
    await store.put("big", data)
    chunks = [c async for c in store.read_range("big", 100, 2 * CHUNK_SIZE + 500)]
    assert len(chunks) == 3 and all(0 < len(c) <= CHUNK_SIZE for c in chunks)
    assert b"".join(chunks) == data[100 : 2 * CHUNK_SIZE + 500]
    assert b"".join([c async for c in store.read_range("big", 0, len(data))]) == data
    assert [c async for c in store.read_range("big", 5, 5)] == []


async def test_read_range_past_the_end_stops_at_the_end(store: LocalMediaStore) -> None:
    await store.put("k", b"0123456789")
    assert b"".join([c async for c in store.read_range("k", 7, 1000)]) == b"789"
    assert [c async for c in store.read_range("k", 50, 60)] == []


async def test_read_range_rejects_negative_or_reversed_ranges(store: LocalMediaStore) -> None:
    await store.put("k", b"data")
    for start, end in ((-1, 2), (3, 2)):
        with pytest.raises(ValueError):
            [c async for c in store.read_range("k", start, end)]


async def test_abandoned_read_releases_its_file(store: LocalMediaStore) -> None:
    await store.put("big", os.urandom(3 * CHUNK_SIZE))
    before = len(os.listdir("/proc/self/fd"))
    reader = store.read_range("big", 0, 3 * CHUNK_SIZE)
    await anext(reader)
    assert len(os.listdir("/proc/self/fd")) == before + 1
    await reader.aclose()
    assert len(os.listdir("/proc/self/fd")) == before


@pytest.mark.parametrize("blocked", ["_do_open", "_pread"])
async def test_reader_cancelled_while_its_thread_works_does_not_leak_the_file(tmp_path: Path, blocked: str) -> None:
    store = LocalMediaStore(tmp_path / "m", max_workers=1)
    try:
        await store.put("k", os.urandom(2 * CHUNK_SIZE))
        in_thread, release = threading.Event(), threading.Event()
        real = getattr(store, blocked)

        def gated(*args):
            result = real(*args)
            in_thread.set()
            release.wait(10)
            return result

        setattr(store, blocked, gated)
        before = len(os.listdir("/proc/self/fd"))
        reading = asyncio.ensure_future(anext(store.read_range("k", 0, 2 * CHUNK_SIZE)))
        await asyncio.to_thread(in_thread.wait, 10)
        reading.cancel()
        with pytest.raises(asyncio.CancelledError):
            await reading
        release.set()
        await store.exists("k")  # one worker: this runs after the gated job and its callbacks
        assert len(os.listdir("/proc/self/fd")) == before
    finally:
        await store.close()


async def test_reader_keeps_the_version_it_opened_while_the_key_is_replaced(store: LocalMediaStore) -> None:
    old, new = b"o" * (3 * CHUNK_SIZE), b"n" * (3 * CHUNK_SIZE)
    await store.put("k", old)
    reader = store.read_range("k", 0, len(old))
    first = await anext(reader)
    await store.put("k", new)
    await store.delete("k")
    assert first + b"".join([c async for c in reader]) == old


async def test_missing_key_raises_media_not_found(store: LocalMediaStore) -> None:
    with pytest.raises(MediaNotFound):
        await store.info("absent")
    with pytest.raises(MediaNotFound):
        [c async for c in store.read_range("absent", 0, 10)]
    with pytest.raises(MediaNotFound):  # even for an empty range: the key is checked
        [c async for c in store.read_range("absent", 0, 0)]
    assert not await store.exists("absent")


async def test_delete_removes_the_object_and_repeating_it_is_harmless(store: LocalMediaStore) -> None:
    await store.put("k", b"data")
    await store.put("keep", b"other")
    await store.delete("k")
    assert not await store.exists("k")
    with pytest.raises(MediaNotFound):
        await store.info("k")
    await store.delete("k")
    await store.delete("never existed")
    assert await read_all(store, "keep") == b"other"


async def test_concurrent_puts_of_one_key_leave_one_complete_object(store: LocalMediaStore) -> None:
    size = 2 * CHUNK_SIZE + 3
    payloads = [bytes([i]) * size for i in range(24)]
    await store.put("contested", payloads[0])
    torn: list[bytes] = []
    reads = 0

    async def writers() -> None:
        await asyncio.gather(*(store.put("contested", p) for p in payloads))

    async def reader(writing: asyncio.Task) -> None:
        nonlocal reads
        while not writing.done():
            data = await read_all(store, "contested")
            reads += 1
            if data not in payloads:
                torn.append(data)

    writing = asyncio.ensure_future(writers())
    await asyncio.gather(writing, reader(writing), reader(writing))
    assert torn == []
    assert reads > 0
    assert await read_all(store, "contested") in payloads
    assert len(files_under(store.root)) == 1


async def test_store_without_fsync_behaves_the_same(tmp_path: Path) -> None:
    store = LocalMediaStore(tmp_path / "nofsync", fsync=False, max_workers=2)
    try:
        await store.put_many([("a", b"1"), ("b/c", b"22")])
        await store.put("d", b"333")
        assert [await read_all(store, k) for k in ("a", "b/c", "d")] == [b"1", b"22", b"333"]
        await store.delete("a")
        assert not await store.exists("a")
    finally:
        await store.close()


async def test_objects_survive_a_new_store_on_the_same_directory(tmp_path: Path) -> None:
    first = LocalMediaStore(tmp_path / "m")
    await first.put("k/1", b"persisted")
    await first.close()
    second = LocalMediaStore(tmp_path / "m")
    try:
        assert await read_all(second, "k/1") == b"persisted"
        await second.put("k/2", b"more")  # into directories the new store did not create
        assert await read_all(second, "k/2") == b"more"
    finally:
        await second.close()


async def test_store_is_usable_from_another_event_loop(store: LocalMediaStore) -> None:
    await store.put("k", b"from the test loop")

    def other_loop() -> bytes:
        async def go() -> bytes:
            await store.put("k2", b"from another loop")
            return await read_all(store, "k")

        return asyncio.run(go())

    assert await asyncio.to_thread(other_loop) == b"from the test loop"
    assert await read_all(store, "k2") == b"from another loop"


async def test_closed_store_refuses_work_and_close_is_idempotent(tmp_path: Path) -> None:
    store = LocalMediaStore(tmp_path / "m")
    await store.close()
    await store.close()
    with pytest.raises(RuntimeError):
        await store.put("k", b"x")
    with pytest.raises(RuntimeError):
        await store.info("k")
