"""A `MediaStore` over a local directory.

Layout: the object stored under `key` lives at ``root/ab/cd/<sha256(key) hex>``, where ``ab``
and ``cd`` are the first four hex digits. The key itself never becomes part of a path, so keys
may hold ``/``, ``..``, NUL, any unicode, and be of any length.

Writes are atomic: the bytes go to a uniquely named temporary file in the object's directory,
which is fsynced and then renamed over the object with ``os.replace``. A reader therefore sees
either the old object or the new one, never a mix, and concurrent writers of one key leave one
of their objects whole (the last rename wins). With ``fsync=True`` a put returns only after the
file, its directory entry and any directories it created are on stable storage.

All blocking file work runs in a thread pool owned by the store (``max_workers`` threads), never
on the event loop. The store keeps no loop-bound state, so it may be used from several loops.
"""

from __future__ import annotations

import asyncio
import ctypes
import ctypes.util
import hashlib
import os
import secrets
from collections.abc import AsyncIterator, Callable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

from stores.errors import MediaNotFound
from stores.media import MediaInfo, MediaStore, copy_through

__all__ = ["LocalMediaStore"]

# Size of the pieces `read_range` yields.
CHUNK_SIZE = 256 * 1024

_O_CLOEXEC = getattr(os, "O_CLOEXEC", 0)
_O_DIRECTORY = getattr(os, "O_DIRECTORY", 0)


def _fsync_dir(path: str) -> None:
    fd = os.open(path, os.O_RDONLY | _O_DIRECTORY | _O_CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _load_syncfs() -> Callable[[int], int] | None:
    """Linux `syncfs(2)`: one call makes every pending write on the store's filesystem durable."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        return libc.syncfs  # type: ignore[no-any-return]
    except (OSError, AttributeError):
        return None


_SYNCFS = _load_syncfs()


def _syncfs(path: str) -> None:
    assert _SYNCFS is not None
    fd = os.open(path, os.O_RDONLY | _O_DIRECTORY | _O_CLOEXEC)
    try:
        if _SYNCFS(fd) != 0:
            err = ctypes.get_errno()
            raise OSError(err, f"syncfs failed: {os.strerror(err)}")
    finally:
        os.close(fd)


def _close_opened(opening: Future) -> None:
    if not opening.cancelled() and opening.exception() is None:
        os.close(opening.result())


def _write_all(fd: int, data: bytes | bytearray | memoryview) -> None:
    view = memoryview(data).cast("B")
    while view:
        written = os.write(fd, view)
        view = view[written:]


class LocalMediaStore:
    """Object bytes in files under `root`; see the module docstring for layout and guarantees."""

    def __init__(self, root: Path, *, fsync: bool = True, max_workers: int = 8) -> None:
        if max_workers < 1:
            raise ValueError("max_workers must be at least 1")
        root = Path(root)
        existed = root.is_dir()
        root.mkdir(parents=True, exist_ok=True)
        self._root = str(root.resolve())
        self._fsync = fsync
        if fsync and not existed:
            _fsync_dir(os.path.dirname(self._root))
        self._workers = max_workers
        self._pool = ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="local-media")
        self._closed = False
        # Directories that exist and whose own entry in their parent is known to be durable.
        # Only ever added to (set.add is atomic under the GIL), and only after that fsync.
        self._ready_dirs: set[str] = {self._root}

    @property
    def root(self) -> Path:
        return Path(self._root)

    def path_for(self, key: str) -> Path:
        """Where the object for `key` is (or would be) stored."""
        return Path(self._locate(key)[1])

    # ---- helpers; the synchronous ones run in the pool ----

    def _locate(self, key: str) -> tuple[str, str]:
        if not isinstance(key, str):
            raise TypeError(f"media keys are str, not {type(key).__name__}")
        digest = hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()
        directory = f"{self._root}/{digest[:2]}/{digest[2:4]}"
        return directory, f"{directory}/{digest}"

    def _submit(self, fn, *args) -> Future:
        if self._closed:
            raise RuntimeError("the media store is closed")
        return self._pool.submit(fn, *args)

    async def _run(self, fn, *args):
        return await asyncio.wrap_future(self._submit(fn, *args))

    @staticmethod
    def _pread(fd: int, size: int, offset: int) -> bytes:
        return os.pread(fd, size, offset)

    def _missing_dirs(self, directory: str) -> list[str]:
        """The object directory and its parent, outermost first, that are not yet known durable."""
        if directory in self._ready_dirs:
            return []
        parent = os.path.dirname(directory)
        return [parent, directory] if parent not in self._ready_dirs else [directory]

    def _prepare_dirs(self, dirs: Iterable[str]) -> None:
        """Create `dirs` (outermost first) if needed; the caller then fsyncs their parents."""
        for d in dirs:
            try:
                os.mkdir(d)
            except FileExistsError:
                pass

    def _sync_and_mark(self, leaf_dirs: set[str], new_dirs: set[str]) -> None:
        """Make renames in `leaf_dirs` and the entries of `new_dirs` durable (one thread)."""
        if self._fsync:
            for d in leaf_dirs | {os.path.dirname(d) for d in new_dirs}:
                _fsync_dir(d)
        self._ready_dirs.update(new_dirs)

    def _write_file(self, directory: str, path: str, data: bytes, fsync: bool | None = None) -> None:
        """Atomically replace `path` with `data` (the file itself fsynced unless told otherwise)."""
        tmp = f"{directory}/.{os.path.basename(path)[:16]}.{secrets.token_hex(8)}.tmp"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | _O_CLOEXEC, 0o644)
        try:
            try:
                _write_all(fd, data)
                if self._fsync if fsync is None else fsync:
                    os.fsync(fd)
            finally:
                os.close(fd)
            os.replace(tmp, path)
        except BaseException:
            try:
                os.unlink(tmp)
            except FileNotFoundError:
                pass
            raise

    def _do_put(self, key: str, data: bytes) -> MediaInfo:
        directory, path = self._locate(key)
        new_dirs = self._missing_dirs(directory)
        self._prepare_dirs(new_dirs)
        self._write_file(directory, path, data)
        self._sync_and_mark({directory}, set(new_dirs))
        return MediaInfo(key=key, size=len(data))

    def _do_stat_size(self, key: str, path: str) -> int:
        try:
            return os.stat(path).st_size
        except FileNotFoundError:
            raise MediaNotFound(f"no media object is stored under key {key!r}") from None

    def _do_open(self, key: str, path: str) -> int:
        try:
            return os.open(path, os.O_RDONLY | _O_CLOEXEC)
        except FileNotFoundError:
            raise MediaNotFound(f"no media object is stored under key {key!r}") from None

    def _do_delete(self, directory: str, path: str) -> None:
        try:
            os.unlink(path)
        except FileNotFoundError:
            return
        if self._fsync:
            _fsync_dir(directory)

    def _make_dir_groups(self, groups: list[list[str]]) -> list[None]:
        for group in groups:
            self._prepare_dirs(group)
        return [None] * len(groups)

    def _write_files(self, jobs: list[tuple[str, str, bytes]], fsync: bool | None = None
                     ) -> list[BaseException | None]:
        errors: list[BaseException | None] = []
        for directory, path, data in jobs:
            try:
                self._write_file(directory, path, data, fsync)
            except Exception as exc:  # reported per item by put_many
                errors.append(exc)
            else:
                errors.append(None)
        return errors

    def _fsync_dirs(self, dirs: list[str]) -> list[None]:
        for d in dirs:
            _fsync_dir(d)
        return [None] * len(dirs)

    async def _spread(self, fn, things: list, per_job: int = 16) -> list:
        """``fn`` maps a list of things to a list of results; run it over `things` in the pool.

        Up to `max_workers` lanes run concurrently, each submitting `per_job` things per job.
        """
        lanes = min(len(things), self._workers)
        bounds = [len(things) * i // lanes for i in range(lanes + 1)]

        async def lane(part: list) -> list:
            out: list = []
            for i in range(0, len(part), per_job):
                out.extend(await self._run(fn, part[i : i + per_job]))
            return out

        parts = await asyncio.gather(*(lane(things[bounds[i] : bounds[i + 1]]) for i in range(lanes)))
        return [r for part in parts for r in part]

    # ---- MediaStore ----

    async def put(self, key: str, data: bytes) -> MediaInfo:
        return await self._run(self._do_put, key, data)

    def _write_files_unsynced(self, jobs: list[tuple[str, str, bytes]]) -> list[BaseException | None]:
        return self._write_files(jobs, fsync=False)

    async def put_many(self, items: list[tuple[str, bytes]]) -> list[MediaInfo]:
        """Write all files concurrently in the pool, then make them durable together.

        On Linux one `syncfs` covers every file, rename and new directory of the batch (measured
        here: 55 µs per 1 KiB object against 195 µs with an fsync per file and directory);
        elsewhere each file is fsynced and each touched directory once.

        Work is spread over `max_workers` lanes that each hand the pool a few files at a time,
        so a large batch never queues ahead of other callers by more than one job per lane.
        If a key appears more than once the last item wins, and each item's `MediaInfo`
        describes what is stored under its key afterwards. If any write fails the others still
        complete (and are made durable) before the first error is raised.
        """
        if not items:
            return []
        last: dict[str, bytes] = {}
        for key, data in items:
            last[key] = data
        located = {key: self._locate(key) for key in last}

        # Directories to create, grouped by top-level directory, each parent before its child.
        groups: dict[str, dict[str, None]] = {}
        for directory, _ in located.values():
            top = os.path.dirname(directory)
            for d in self._missing_dirs(directory):
                groups.setdefault(top, {})[d] = None
        new_dirs = [d for group in groups.values() for d in group]
        if groups:
            await self._spread(self._make_dir_groups, [list(g) for g in groups.values()])

        jobs = [(d, p, last[k]) for k, (d, p) in located.items()]
        if self._fsync and _SYNCFS is not None:
            errors = await self._spread(self._write_files_unsynced, jobs)
            await self._run(_syncfs, self._root)
        else:
            errors = await self._spread(self._write_files, jobs)
        if self._fsync and _SYNCFS is None:
            to_sync = {d for (d, _, _), e in zip(jobs, errors) if e is None}
            to_sync.update(os.path.dirname(d) for d in new_dirs)
            await self._spread(self._fsync_dirs, sorted(to_sync))
        # New directories that received no object are marked too: they were made durable above.
        self._ready_dirs.update(new_dirs)
        for e in errors:
            if e is not None:
                raise e
        return [MediaInfo(key=key, size=len(last[key])) for key, _ in items]

    async def info(self, key: str) -> MediaInfo:
        _, path = self._locate(key)
        return MediaInfo(key=key, size=await self._run(self._do_stat_size, key, path))

    def _do_sizes(self, located: list[tuple[str, str]]) -> dict[str, MediaInfo]:
        found = {}
        for key, path in located:
            try:
                found[key] = MediaInfo(key=key, size=os.stat(path).st_size)
            except FileNotFoundError:
                pass
        return found

    async def info_many(self, keys: list[str]) -> dict[str, MediaInfo]:
        """One thread job for the whole list: a stat costs microseconds, a thread hop more."""
        return await self._run(self._do_sizes, [(key, self._locate(key)[1]) for key in keys]) if keys else {}

    async def exists(self, key: str) -> bool:
        _, path = self._locate(key)
        return await self._run(os.path.isfile, path)

    async def read_range(self, key: str, start: int, end: int) -> AsyncIterator[bytes]:
        """Yield bytes [start, end) of the object in chunks of at most `CHUNK_SIZE`.

        The file is opened once, so the bytes all come from one version of the object even
        if it is replaced meanwhile. A range reaching past the end stops at the end.
        """
        if start < 0 or end < start:
            raise ValueError(f"invalid byte range [{start}, {end})")
        _, path = self._locate(key)
        opening = self._submit(self._do_open, key, path)
        try:
            fd = await asyncio.wrap_future(opening)
        except asyncio.CancelledError:
            opening.add_done_callback(_close_opened)  # the open may still complete in its thread
            raise
        reading: Future | None = None
        try:
            pos = start
            while pos < end:
                reading = self._submit(self._pread, fd, min(CHUNK_SIZE, end - pos), pos)
                chunk = await asyncio.wrap_future(reading)
                reading = None
                if not chunk:
                    break
                pos += len(chunk)
                yield chunk
        finally:
            if reading is None:
                os.close(fd)
            else:
                # Abandoned with a read queued or in flight: close when that thread is done with
                # fd (at once if it already is), so fd cannot be reused under it.
                reading.add_done_callback(lambda _f: os.close(fd))

    async def delete(self, key: str) -> None:
        directory, path = self._locate(key)
        await self._run(self._do_delete, directory, path)

    async def copy_from(self, source: MediaStore, key: str) -> MediaInfo:
        return await copy_through(self, source, key)

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        await asyncio.to_thread(self._pool.shutdown, wait=True)
