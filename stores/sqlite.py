"""The embedded metadata store: SQLite in WAL mode.

One writer thread owns the only write connection (the agent is the single writer anyway); reads
run on a small pool of threads with a connection each, so API queries never block the event loop
and never wait for a write. Segments live in a WITHOUT ROWID table clustered on (flow_id, start_ns):
a timerange query is one index range scan.
"""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from collections.abc import Callable, Collection, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

import orjson

from schemas.timing import INT64_MIN
from stores.errors import Conflict, NotFound
from stores.metadata import (
    ContextRequest,
    Deletion,
    FlowQuery,
    FlowRecord,
    Listing,
    ObjectAllocation,
    ObjectRecord,
    ProfileRecord,
    SegmentCommit,
    SegmentContext,
    SegmentPage,
    SegmentQuery,
    SourceQuery,
    SourceRecord,
    StoredSegment,
    TagFilter,
    without_copy,
)

T = TypeVar("T")

SCHEMA = [
    """CREATE TABLE IF NOT EXISTS sources (
        id TEXT PRIMARY KEY, format TEXT NOT NULL, label TEXT,
        created_ns INTEGER NOT NULL, updated_ns INTEGER NOT NULL, doc TEXT NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS flows (
        id TEXT PRIMARY KEY, source_id TEXT NOT NULL, format TEXT NOT NULL, codec TEXT, container TEXT,
        label TEXT, read_only INTEGER NOT NULL DEFAULT 0,
        created_ns INTEGER NOT NULL, metadata_updated_ns INTEGER NOT NULL, segments_updated_ns INTEGER,
        tr_start_ns INTEGER, tr_end_ns INTEGER,
        max_segment_ns INTEGER NOT NULL DEFAULT 0, segment_count INTEGER NOT NULL DEFAULT 0,
        doc TEXT NOT NULL)""",
    "CREATE INDEX IF NOT EXISTS flows_by_source ON flows(source_id)",
    """CREATE TABLE IF NOT EXISTS segments (
        flow_id TEXT NOT NULL, start_ns INTEGER NOT NULL, end_ns INTEGER NOT NULL,
        object_id TEXT NOT NULL, init_object_id TEXT, object_timerange TEXT, doc TEXT NOT NULL,
        PRIMARY KEY (flow_id, start_ns)) WITHOUT ROWID""",
    "CREATE INDEX IF NOT EXISTS segments_by_object ON segments(object_id)",
    "CREATE INDEX IF NOT EXISTS segments_by_init_object ON segments(init_object_id) WHERE init_object_id IS NOT NULL",
    """CREATE TABLE IF NOT EXISTS objects (
        id TEXT PRIMARY KEY, storage_id TEXT NOT NULL, allocated_by_flow TEXT, content_type TEXT,
        created_ns INTEGER NOT NULL, registered INTEGER NOT NULL DEFAULT 0, timerange TEXT,
        key_frame_count INTEGER, init_object_id TEXT, first_referenced_by_flow TEXT, size INTEGER,
        checksum TEXT, copies TEXT NOT NULL DEFAULT '[]'
        ) WITHOUT ROWID""",
    "CREATE INDEX IF NOT EXISTS objects_unregistered ON objects(created_ns) WHERE registered = 0",
    """CREATE TABLE IF NOT EXISTS profiles (
        id TEXT PRIMARY KEY, format TEXT, codec TEXT, label TEXT, created_ns INTEGER NOT NULL, doc TEXT NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS flow_members (
        collection_id TEXT NOT NULL, member_id TEXT NOT NULL, role TEXT, position INTEGER NOT NULL,
        PRIMARY KEY (collection_id, member_id)) WITHOUT ROWID""",
    "CREATE INDEX IF NOT EXISTS flow_members_by_member ON flow_members(member_id)",
    """CREATE TABLE IF NOT EXISTS deletion_requests (
        id TEXT PRIMARY KEY, flow_id TEXT NOT NULL, updated_ns INTEGER NOT NULL, doc TEXT NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS object_instances (
        object_id TEXT NOT NULL, label TEXT NOT NULL, url TEXT NOT NULL, position INTEGER NOT NULL,
        PRIMARY KEY (object_id, label)) WITHOUT ROWID""",
    "CREATE TABLE IF NOT EXISTS service_info (id INTEGER PRIMARY KEY CHECK (id = 1), doc TEXT NOT NULL)",
    """CREATE TABLE IF NOT EXISTS applied_events (
        flow_id TEXT NOT NULL, event_id TEXT NOT NULL, applied_ns INTEGER NOT NULL,
        PRIMARY KEY (flow_id, event_id)) WITHOUT ROWID""",
]

FLOW_COLUMNS = (
    "doc, created_ns, metadata_updated_ns, segments_updated_ns, tr_start_ns, tr_end_ns, max_segment_ns, segment_count,"
    " (SELECT json_group_array(collection_id) FROM flow_members WHERE member_id = flows.id)"
)
# Which sources collect which: through the flows' collections (source_collection / collected_by).
SOURCE_LINKS = (
    "SELECT fc.source_id, fm.source_id, m.role FROM flow_members m"
    " JOIN flows fc ON fc.id = m.collection_id JOIN flows fm ON fm.id = m.member_id"
)
SEGMENT_COLUMNS = "start_ns, end_ns, object_id, init_object_id, object_timerange, doc"
OBJECT_COLUMNS = (
    "id, storage_id, allocated_by_flow, content_type, created_ns, registered, timerange, key_frame_count, "
    "init_object_id, first_referenced_by_flow, size, checksum, copies"
)
# Columns added after the first release: (table, column, definition). Migrations are additive only.
MIGRATIONS = [
    ("objects", "checksum", "TEXT"),
    ("objects", "copies", "TEXT NOT NULL DEFAULT '[]'"),
]
# Objects some segment uses as its init object are in use although never registered (registration is for media).
_NOT_AN_INIT_OBJECT = "NOT EXISTS (SELECT 1 FROM segments s WHERE s.init_object_id = objects.id)"
# Below this the `start - longest segment` bound could overflow int64, and it prunes nothing anyway.
_UNBOUNDED_BELOW = INT64_MIN // 2


def _flow(row: tuple[Any, ...]) -> FlowRecord:
    doc, created, updated, seg_updated, tr_start, tr_end, max_seg, count, collected_by = row
    return FlowRecord(
        doc=orjson.loads(doc), created_ns=created, metadata_updated_ns=updated, segments_updated_ns=seg_updated,
        extent=None if tr_start is None else (tr_start, tr_end), max_segment_ns=max_seg, segment_count=count,
        collected_by=tuple(sorted(orjson.loads(collected_by))),
    )


def _sources(conn: sqlite3.Connection, rows: list[tuple[Any, ...]]) -> list[SourceRecord]:
    """Source records with their collections inferred, for a page of (doc, created_ns, updated_ns) rows."""
    docs = [orjson.loads(r[0]) for r in rows]
    ids = [d["id"] for d in docs]
    members: dict[str, dict[str, str]] = {}
    collectors: dict[str, set[str]] = {}
    for chunk in _chunks(ids):
        marks = ",".join("?" * len(chunk))
        sql = f"{SOURCE_LINKS} WHERE fc.source_id IN ({marks}) OR fm.source_id IN ({marks})"
        for collector, member, role in conn.execute(sql, (*chunk, *chunk)):
            members.setdefault(collector, {}).setdefault(member, role)
            collectors.setdefault(member, set()).add(collector)
    return [SourceRecord(
        d, r[1], r[2],
        source_collection=tuple({"id": m, **({"role": role} if role else {})}
                                for m, role in sorted(members.get(d["id"], {}).items())),
        collected_by=tuple(sorted(collectors.get(d["id"], ()))),
    ) for d, r in zip(docs, rows, strict=True)]


def _object(row: tuple[Any, ...]) -> ObjectRecord:
    return ObjectRecord(
        object_id=row[0], storage_id=row[1], allocated_by_flow=row[2], content_type=row[3], created_ns=row[4],
        registered=bool(row[5]), timerange=row[6], key_frame_count=row[7], init_object_id=row[8],
        first_referenced_by_flow=row[9], size=row[10], checksum=row[11], copies=tuple(orjson.loads(row[12])),
    )


def _segment(row: tuple[Any, ...]) -> StoredSegment:
    return StoredSegment(row[0], row[1], row[2], row[3], row[4], row[5].encode() if isinstance(row[5], str) else row[5])


class SqliteMetadataStore:
    """`MetadataStore` on one SQLite file, shared by the worker (writes) and API processes (reads)."""

    def __init__(self, path: Path, *, readers: int = 4) -> None:
        self.path = Path(path)
        self._writer = ThreadPoolExecutor(1, thread_name_prefix="sqlite-writer")
        self._readers = ThreadPoolExecutor(readers, thread_name_prefix="sqlite-reader")
        self._local = threading.local()
        self._connections: list[sqlite3.Connection] = []
        self._lock = threading.Lock()
        self._checkpointer: _Checkpointer | None = None

    # -- plumbing -------------------------------------------------------------------------------

    def _connect(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False, timeout=30.0)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=FULL")
            conn.execute("PRAGMA cache_size=-65536")
            conn.execute("PRAGMA busy_timeout=30000")
            conn.execute("PRAGMA wal_autocheckpoint=0")  # checkpoints run in the background (_Checkpointer)
            self._local.conn = conn
            with self._lock:
                self._connections.append(conn)
        return conn

    async def _read(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._readers, lambda: fn(self._connect()))

    async def _write(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        if self._checkpointer is None:
            self._checkpointer = _Checkpointer(self.path)

        def run() -> T:
            conn = self._connect()
            conn.execute("BEGIN IMMEDIATE")
            try:
                result = fn(conn)
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")
            return result

        return await asyncio.get_running_loop().run_in_executor(self._writer, run)

    async def open(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)

        def create(conn: sqlite3.Connection) -> None:
            for statement in SCHEMA:
                conn.execute(statement)
            for table, column, definition in MIGRATIONS:
                if column not in {row[1] for row in conn.execute(f"PRAGMA table_info({table})")}:
                    conn.execute(f"ALTER TABLE {table} ADD COLUMN {column} {definition}")

        await self._write(create)

    async def close(self) -> None:
        if self._checkpointer is not None:
            self._checkpointer.stop()
        self._writer.shutdown(wait=True)
        self._readers.shutdown(wait=True)
        with self._lock:
            for conn in self._connections:
                conn.close()
            self._connections.clear()

    # -- flows and sources ----------------------------------------------------------------------

    async def get_flow(self, flow_id: str) -> FlowRecord:
        def query(conn: sqlite3.Connection) -> FlowRecord:
            row = conn.execute(f"SELECT {FLOW_COLUMNS} FROM flows WHERE id = ?", (flow_id,)).fetchone()
            if row is None:
                raise NotFound(f"flow {flow_id} does not exist")
            return _flow(row)

        return await self._read(query)

    async def put_flow(self, doc: dict[str, Any], now_ns: int) -> bool:
        flow_id, source_id = doc["id"], doc["source_id"]
        body = orjson.dumps(doc).decode()

        def upsert(conn: sqlite3.Connection) -> bool:
            source = conn.execute("SELECT format FROM sources WHERE id = ?", (source_id,)).fetchone()
            if source is None:
                source_doc = orjson.dumps({"id": source_id, "format": doc["format"]}).decode()
                conn.execute(
                    "INSERT INTO sources (id, format, created_ns, updated_ns, doc) VALUES (?, ?, ?, ?, ?)",
                    (source_id, doc["format"], now_ns, now_ns, source_doc),
                )
            elif source[0] != doc["format"]:
                raise Conflict(f"source {source_id} has format {source[0]}, the flow has {doc['format']}")
            _replace_members(conn, flow_id, doc.get("flow_collection") or [])
            values = (source_id, doc["format"], doc.get("codec"), doc.get("container"), doc.get("label"),
                      int(bool(doc.get("read_only"))), now_ns, body, flow_id)
            cur = conn.execute(
                "UPDATE flows SET source_id=?, format=?, codec=?, container=?, label=?, read_only=?, "
                "metadata_updated_ns=?, doc=? WHERE id=?", values,
            )
            if cur.rowcount:
                return False
            conn.execute(
                "INSERT INTO flows (source_id, format, codec, container, label, read_only, metadata_updated_ns, doc,"
                " id, created_ns) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", (*values, now_ns),
            )
            return True

        return await self._write(upsert)

    async def list_flows(self, query: FlowQuery) -> list[FlowRecord]:
        key = _sort_sql(query.listing, updated="metadata_updated_ns")
        where, args = _keyset(query.listing, key)
        for column, value in (("source_id", query.source_id), ("format", query.format), ("codec", query.codec),
                              ("label", query.label)):
            if value is not None:
                where.append(f"{column} = ?")
                args.append(value)
        for path, value in (("$.status", query.status), ("$.essence_parameters.frame_width", query.frame_width),
                            ("$.essence_parameters.frame_height", query.frame_height)):
            if value is not None:
                where.append("json_extract(doc, ?) = ?")
                args += [path, value]
        if query.profile_id is not None:
            where.append("json_extract(doc, '$.profile_id') = ?")
            args.append(query.profile_id)
        if query.collected_by_ids is not None:
            ids = query.collected_by_ids
            collecting = f" AND collection_id IN ({','.join('?' * len(ids))})" if ids else ""
            where.append(f"{'' if ids else 'NOT '}EXISTS (SELECT 1 FROM flow_members WHERE member_id = flows.id"
                         f"{collecting})")
            args += ids
        if query.init_segments is not None:
            where.append("coalesce(json_extract(doc, '$.essence_parameters.init_segments'), 0) = ?")
            args.append(int(query.init_segments))
        if query.empty_only:
            where.append("tr_start_ns IS NULL")
        elif query.overlapping is not None:
            where.append("tr_start_ns < ? AND tr_end_ns > ?")
            args += [query.overlapping[1], query.overlapping[0]]
        _tag_sql(query.tags, where, args)
        sql = f"SELECT {FLOW_COLUMNS} FROM flows WHERE {' AND '.join(where)} ORDER BY {_order(query.listing, key)} LIMIT ?"
        return await self._read(lambda conn: [_flow(row) for row in conn.execute(sql, (*args, query.limit))])

    async def get_source(self, source_id: str) -> SourceRecord:
        def query(conn: sqlite3.Connection) -> SourceRecord:
            row = conn.execute("SELECT doc, created_ns, updated_ns FROM sources WHERE id = ?", (source_id,)).fetchone()
            if row is None:
                raise NotFound(f"source {source_id} does not exist")
            return _sources(conn, [row])[0]

        return await self._read(query)

    async def put_source(self, doc: dict[str, Any], now_ns: int) -> None:
        def update(conn: sqlite3.Connection) -> None:
            cur = conn.execute("UPDATE sources SET label = ?, updated_ns = ?, doc = ? WHERE id = ?",
                               (doc.get("label"), now_ns, orjson.dumps(doc).decode(), doc["id"]))
            if not cur.rowcount:
                raise NotFound(f"source {doc['id']} does not exist")

        await self._write(update)

    async def list_sources(self, query: SourceQuery) -> list[SourceRecord]:
        key = _sort_sql(query.listing, updated="updated_ns")
        where, args = _keyset(query.listing, key)
        for column, value in (("format", query.format), ("label", query.label)):
            if value is not None:
                where.append(f"{column} = ?")
                args.append(value)
        _tag_sql(query.tags, where, args)
        if query.collected_by_ids is not None:
            ids = query.collected_by_ids
            collecting = f" AND fc.source_id IN ({','.join('?' * len(ids))})" if ids else ""
            where.append(f"{'' if ids else 'NOT '}EXISTS ({SOURCE_LINKS} WHERE fm.source_id = sources.id{collecting})")
            args += ids
        sql = (f"SELECT doc, created_ns, updated_ns FROM sources WHERE {' AND '.join(where)}"
               f" ORDER BY {_order(query.listing, key)} LIMIT ?")
        return await self._read(lambda conn: _sources(conn, conn.execute(sql, (*args, query.limit)).fetchall()))

    async def create_profile(self, doc: dict[str, Any], now_ns: int) -> None:
        metadata = doc["flow_metadata"]

        def insert(conn: sqlite3.Connection) -> None:
            try:
                conn.execute("INSERT INTO profiles (id, format, codec, label, created_ns, doc) VALUES (?,?,?,?,?,?)",
                             (doc["id"], metadata.get("format"), metadata.get("codec"), doc.get("label"), now_ns,
                              orjson.dumps(doc).decode()))
            except sqlite3.IntegrityError:
                raise Conflict(f"profile {doc['id']} exists already; profiles cannot be changed") from None

        await self._write(insert)

    async def get_profile(self, profile_id: str) -> ProfileRecord:
        row = await self._read(lambda conn: conn.execute(
            "SELECT doc, created_ns FROM profiles WHERE id = ?", (profile_id,)).fetchone())
        if row is None:
            raise NotFound(f"profile {profile_id} does not exist")
        return ProfileRecord(orjson.loads(row[0]), row[1])

    async def list_profiles(self, *, format: str | None, codec: str | None, label: str | None, after_id: str | None,
                            limit: int) -> list[ProfileRecord]:
        where, args = ["id > ?"], [after_id or ""]
        for column, value in (("format", format), ("codec", codec), ("label", label)):
            if value is not None:
                where.append(f"{column} = ?")
                args.append(value)
        sql = f"SELECT doc, created_ns FROM profiles WHERE {' AND '.join(where)} ORDER BY id LIMIT ?"
        return await self._read(lambda conn: [ProfileRecord(orjson.loads(r[0]), r[1])
                                              for r in conn.execute(sql, (*args, limit))])

    async def put_deletion_request(self, doc: dict[str, Any], now_ns: int) -> None:
        body = orjson.dumps(doc).decode()
        await self._write(lambda conn: conn.execute(
            "INSERT INTO deletion_requests (id, flow_id, updated_ns, doc) VALUES (?, ?, ?, ?) ON CONFLICT (id)"
            " DO UPDATE SET updated_ns = excluded.updated_ns, doc = excluded.doc",
            (doc["id"], doc["flow_id"], now_ns, body)))

    async def get_deletion_request(self, request_id: str) -> dict[str, Any]:
        row = await self._read(lambda conn: conn.execute(
            "SELECT doc FROM deletion_requests WHERE id = ?", (request_id,)).fetchone())
        if row is None:
            raise NotFound(f"deletion request {request_id} does not exist")
        return orjson.loads(row[0])

    async def list_deletion_requests(self, *, after_id: str | None, limit: int) -> list[dict[str, Any]]:
        return await self._read(lambda conn: [orjson.loads(r[0]) for r in conn.execute(
            "SELECT doc FROM deletion_requests WHERE id > ? ORDER BY id LIMIT ?", (after_id or "", limit))])

    async def get_service_info(self) -> dict[str, Any]:
        row = await self._read(lambda conn: conn.execute("SELECT doc FROM service_info WHERE id = 1").fetchone())
        return orjson.loads(row[0]) if row else {}

    async def put_service_info(self, info: dict[str, Any]) -> None:
        body = orjson.dumps(info).decode()
        await self._write(lambda conn: conn.execute(
            "INSERT INTO service_info (id, doc) VALUES (1, ?) ON CONFLICT (id) DO UPDATE SET doc = excluded.doc",
            (body,)))

    # -- objects --------------------------------------------------------------------------------

    async def allocate_objects(self, allocations: Sequence[ObjectAllocation]) -> None:
        def insert(conn: sqlite3.Connection) -> None:
            ids = [a.object_id for a in allocations]
            taken = _existing(conn, "SELECT id FROM objects WHERE id IN ({})", ids)
            if taken:
                raise Conflict(f"object ids already exist: {', '.join(sorted(taken)[:5])}")
            conn.executemany(
                "INSERT INTO objects (id, storage_id, allocated_by_flow, content_type, created_ns) VALUES (?,?,?,?,?)",
                [(a.object_id, a.storage_id, a.flow_id, a.content_type, a.created_ns) for a in allocations],
            )

        await self._write(insert)

    async def get_objects(self, object_ids: Collection[str]) -> dict[str, ObjectRecord]:
        ids = list(object_ids)

        def query(conn: sqlite3.Connection) -> dict[str, ObjectRecord]:
            found: dict[str, ObjectRecord] = {}
            for chunk in _chunks(ids):
                marks = ",".join("?" * len(chunk))
                for row in conn.execute(f"SELECT {OBJECT_COLUMNS} FROM objects WHERE id IN ({marks})", chunk):
                    found[row[0]] = _object(row)
            return found

        return await self._read(query) if ids else {}

    async def expired_allocations(self, created_before_ns: int, limit: int) -> list[ObjectRecord]:
        sql = (f"SELECT {OBJECT_COLUMNS} FROM objects WHERE registered = 0 AND created_ns < ? AND {_NOT_AN_INIT_OBJECT}"
               " LIMIT ?")
        return await self._read(lambda conn: [_object(r) for r in conn.execute(sql, (created_before_ns, limit))])

    async def drop_allocations(self, object_ids: Collection[str]) -> list[ObjectRecord]:
        ids = list(object_ids)

        def drop(conn: sqlite3.Connection) -> list[ObjectRecord]:
            dropped: list[ObjectRecord] = []
            for chunk in _chunks(ids):
                marks = ",".join("?" * len(chunk))
                dropped += [_object(r) for r in conn.execute(
                    f"SELECT {OBJECT_COLUMNS} FROM objects WHERE registered = 0 AND id IN ({marks})"
                    f" AND {_NOT_AN_INIT_OBJECT}", chunk)]
            conn.executemany("DELETE FROM objects WHERE id = ?", [(o.object_id,) for o in dropped])
            return dropped

        return await self._write(drop) if ids else []

    async def add_controlled_copy(self, object_id: str, storage_id: str) -> None:
        def add(conn: sqlite3.Connection) -> None:
            row = conn.execute("SELECT storage_id, copies FROM objects WHERE id = ?", (object_id,)).fetchone()
            if row is None:
                raise NotFound(f"object {object_id} does not exist")
            copies = orjson.loads(row[1])
            if storage_id != row[0] and storage_id not in copies:
                conn.execute("UPDATE objects SET copies = ? WHERE id = ?",
                             (orjson.dumps([*copies, storage_id]).decode(), object_id))

        await self._write(add)

    async def remove_controlled_copy(self, object_id: str, storage_id: str) -> None:
        def remove(conn: sqlite3.Connection) -> None:
            row = conn.execute("SELECT storage_id, copies FROM objects WHERE id = ?", (object_id,)).fetchone()
            if row is None:
                raise NotFound(f"object {object_id} does not exist")
            primary, copies = row[0], orjson.loads(row[1])
            primary, copies = without_copy(object_id, primary, copies, storage_id)
            conn.execute("UPDATE objects SET storage_id = ?, copies = ? WHERE id = ?",
                         (primary, orjson.dumps(copies).decode(), object_id))

        await self._write(remove)

    async def object_references(self, object_id: str, *, after_flow: str | None, limit: int,
                                flow_tags: TagFilter | None = None) -> list[str]:
        where, args = ["r.flow_id > ?"], [object_id, object_id, after_flow or ""]
        if flow_tags is not None:
            _tag_sql(flow_tags, where, args)
        sql = ("SELECT r.flow_id FROM (SELECT flow_id FROM segments WHERE object_id = ?"
               " UNION SELECT flow_id FROM segments WHERE init_object_id = ?) r JOIN flows ON flows.id = r.flow_id"
               f" WHERE {' AND '.join(where)} ORDER BY r.flow_id LIMIT ?")
        return await self._read(lambda conn: [r[0] for r in conn.execute(sql, (*args, limit))])

    async def add_uncontrolled_instances(self, object_id: str, instances: Sequence[tuple[str, str]]) -> None:
        def insert(conn: sqlite3.Connection) -> None:
            existing = dict(conn.execute("SELECT label, url FROM object_instances WHERE object_id = ?", (object_id,)))
            wanted: dict[str, str] = {}
            for label, url in instances:
                if wanted.setdefault(label, url) != url:
                    raise Conflict(f"two URLs for the instance label {label!r} of object {object_id}")
            clash = sorted(label for label, url in wanted.items() if existing.get(label, url) != url)
            if clash:
                raise Conflict(f"object {object_id} has other instances labelled {', '.join(clash)} already")
            instances_new = [(label, url) for label, url in wanted.items() if label not in existing]
            start = conn.execute("SELECT coalesce(max(position) + 1, 0) FROM object_instances WHERE object_id = ?",
                                 (object_id,)).fetchone()[0]
            conn.executemany("INSERT INTO object_instances (object_id, label, url, position) VALUES (?, ?, ?, ?)",
                             [(object_id, label, url, start + i) for i, (label, url) in enumerate(instances_new)])

        if instances:
            await self._write(insert)

    async def remove_uncontrolled_instance(self, object_id: str, label: str) -> None:
        def delete(conn: sqlite3.Connection) -> None:
            cur = conn.execute("DELETE FROM object_instances WHERE object_id = ? AND label = ?", (object_id, label))
            if not cur.rowcount:
                raise NotFound(f"object {object_id} has no uncontrolled instance labelled {label!r}")

        await self._write(delete)

    async def uncontrolled_instances(self, object_ids: Collection[str]) -> dict[str, list[tuple[str, str]]]:
        ids = list(object_ids)

        def query(conn: sqlite3.Connection) -> dict[str, list[tuple[str, str]]]:
            found: dict[str, list[tuple[str, str]]] = {}
            for chunk in _chunks(ids):
                marks = ",".join("?" * len(chunk))
                for object_id, label, url in conn.execute(
                        f"SELECT object_id, label, url FROM object_instances WHERE object_id IN ({marks})"
                        " ORDER BY object_id, position", chunk):
                    found.setdefault(object_id, []).append((label, url))
            return found

        return await self._read(query) if ids else {}

    # -- segments -------------------------------------------------------------------------------

    async def applied_event_ids(self, flow_id: str, event_ids: Collection[str]) -> set[str]:
        ids = list(event_ids)
        if not ids:
            return set()
        return await self._read(
            lambda conn: _existing(
                conn, "SELECT event_id FROM applied_events WHERE flow_id = ? AND event_id IN ({})", ids, flow_id
            )
        )

    async def segment_context(self, requests: Sequence[ContextRequest]) -> dict[str, SegmentContext]:
        def read(conn: sqlite3.Connection) -> dict[str, SegmentContext]:
            conn.execute("BEGIN")  # one snapshot for the whole batch
            try:
                return {r.flow_id: _context(conn, r) for r in requests}
            finally:
                conn.execute("COMMIT")

        return await self._read(read) if requests else {}

    async def commit_segments(self, commits: Sequence[SegmentCommit]) -> None:
        commits = [c for c in commits if c.segments or c.event_ids]
        if commits:
            await self._write(lambda conn: [_apply_commit(conn, c) for c in commits])

    async def delete_segments(self, flow_id: str, start_ns: int, end_ns: int, object_id: str | None,
                              now_ns: int, limit: int | None = None) -> Deletion:
        def run(conn: sqlite3.Connection) -> Deletion:
            where, args = "flow_id = ? AND start_ns >= ? AND end_ns <= ?", [flow_id, start_ns, end_ns]
            if object_id is not None:
                where += " AND object_id = ?"
                args.append(object_id)
            probe = -1 if limit is None else limit + 1
            rows = conn.execute(f"SELECT start_ns, end_ns, object_id, init_object_id FROM segments WHERE {where}"
                                " ORDER BY start_ns LIMIT ?", (*args, probe)).fetchall()
            more = limit is not None and len(rows) > limit
            rows = rows[:limit] if more else rows
            if not rows:
                return Deletion(0, None, [])
            conn.execute(f"DELETE FROM segments WHERE {where} AND start_ns <= ?", (*args, rows[-1][0]))
            _refresh_flow_extent(conn, flow_id, now_ns)
            return Deletion(len(rows), (min(r[0] for r in rows), max(r[1] for r in rows)),
                            _drop_unreferenced(conn, {r[2] for r in rows} | {r[3] for r in rows if r[3]}), more=more)

        return await self._write(run)

    async def delete_flow(self, flow_id: str) -> Deletion:
        def run(conn: sqlite3.Connection) -> Deletion:
            row = conn.execute("SELECT source_id FROM flows WHERE id = ?", (flow_id,)).fetchone()
            if row is None:
                raise NotFound(f"flow {flow_id} does not exist")
            rows = conn.execute("SELECT start_ns, end_ns, object_id, init_object_id FROM segments WHERE flow_id = ?",
                                (flow_id,)).fetchall()
            conn.execute("DELETE FROM segments WHERE flow_id = ?", (flow_id,))
            conn.execute("DELETE FROM applied_events WHERE flow_id = ?", (flow_id,))
            conn.execute("DELETE FROM flows WHERE id = ?", (flow_id,))
            conn.execute("DELETE FROM flow_members WHERE collection_id = ?", (flow_id,))
            candidates = {r[2] for r in rows} | {r[3] for r in rows if r[3]}
            unreferenced = _drop_unreferenced(conn, candidates)
            # The flow's allocations never used by a segment (init objects are never registered: keep those in use).
            allocated = [_object(r) for r in conn.execute(
                f"SELECT {OBJECT_COLUMNS} FROM objects WHERE allocated_by_flow = ? AND registered = 0"
                f" AND {_NOT_AN_INIT_OBJECT}", (flow_id,))]
            source_deleted = None
            if conn.execute("SELECT 1 FROM flows WHERE source_id = ? LIMIT 1", (row[0],)).fetchone() is None:
                conn.execute("DELETE FROM sources WHERE id = ?", (row[0],))
                source_deleted = row[0]
            conn.executemany("DELETE FROM objects WHERE id = ?", [(o.object_id,) for o in allocated])
            conn.executemany("DELETE FROM object_instances WHERE object_id = ?", [(o.object_id,) for o in allocated])
            span = (min(r[0] for r in rows), max(r[1] for r in rows)) if rows else None
            return Deletion(len(rows), span, unreferenced + allocated, source_deleted)

        return await self._write(run)

    async def list_segments(self, query: SegmentQuery) -> SegmentPage:
        probe = SegmentQuery(**{**_fields(query), "limit": query.limit + 1})
        sql, args = _segment_sql(probe)
        rows = await self._read(lambda conn: conn.execute(sql, args).fetchall())
        more = len(rows) > query.limit
        return SegmentPage([_segment(r) for r in rows[: query.limit]], more)



def _sort_sql(listing: Listing, *, updated: str) -> tuple[str, str]:
    """SQL for the (missing, value) part of `stores.metadata.sort_key`; the id completes it."""
    if listing.sort_by == "label":
        return "(label IS NULL)", "coalesce(label, '')"
    column = "created_ns" if listing.sort_by == "created" else updated
    return "0", f"-{column}"


def _keyset(listing: Listing, key: tuple[str, str]) -> tuple[list[str], list[Any]]:
    if listing.after is None:
        return ["1"], []
    op = "<" if listing.reverse else ">"
    return [f"({key[0]}, {key[1]}, id) {op} (?, ?, ?)"], list(listing.after)


def _order(listing: Listing, key: tuple[str, str]) -> str:
    direction = "DESC" if listing.reverse else "ASC"
    terms = [key[1], "id"] if key[0] == "0" else [*key, "id"]  # a bare 0 in ORDER BY names a column
    return ", ".join(f"{term} {direction}" for term in terms)


def _tag_sql(tags: TagFilter, where: list[str], args: list[Any]) -> None:
    """Tag filters on the `doc` column: a string tag is one value, an array tag matches on any element.

    Tags are matched by key through json_each rather than by JSON path, so any tag name works."""
    for name, values in tags.values.items():
        where.append("EXISTS (SELECT 1 FROM json_each(doc, '$.tags') t, json_each(CASE WHEN t.type = 'array'"
                     " THEN t.value ELSE json_quote(t.value) END) v"
                     f" WHERE t.key = ? AND v.value IN ({','.join('?' * len(values))}))")
        args += [name, *values]
    for name, present in tags.exists.items():
        where.append(f"{'' if present else 'NOT '}EXISTS (SELECT 1 FROM json_each(doc, '$.tags') t WHERE t.key = ?)")
        args.append(name)


def _replace_members(conn: sqlite3.Connection, flow_id: str, items: list[dict[str, Any]]) -> None:
    """Keep the membership rows of a flow's collection; every member must be a stored flow."""
    ids = [item["id"] for item in items]
    known = _existing(conn, "SELECT id FROM flows WHERE id IN ({})", ids) if ids else set()
    missing = [i for i in ids if i not in known and i != flow_id]
    if missing or flow_id in ids:
        reason = "a flow cannot collect itself" if flow_id in ids else f"no such flows: {', '.join(missing[:5])}"
        raise Conflict(f"flow_collection of {flow_id}: {reason}")
    conn.execute("DELETE FROM flow_members WHERE collection_id = ?", (flow_id,))
    conn.executemany("INSERT OR REPLACE INTO flow_members (collection_id, member_id, role, position) VALUES (?,?,?,?)",
                     [(flow_id, item["id"], item.get("role"), i) for i, item in enumerate(items)])


def _refresh_flow_extent(conn: sqlite3.Connection, flow_id: str, now_ns: int) -> None:
    """Recompute the flow's extent and count after a delete (two index probes and a count)."""
    first = conn.execute("SELECT start_ns FROM segments WHERE flow_id = ? ORDER BY start_ns LIMIT 1",
                         (flow_id,)).fetchone()
    last_end = conn.execute("SELECT max(end_ns) FROM segments WHERE flow_id = ? AND start_ns >= "
                            "(SELECT max(start_ns) FROM segments WHERE flow_id = ?) - "
                            "(SELECT max_segment_ns FROM flows WHERE id = ?)", (flow_id, flow_id, flow_id)).fetchone()
    count = conn.execute("SELECT count(*) FROM segments WHERE flow_id = ?", (flow_id,)).fetchone()[0]
    conn.execute("UPDATE flows SET tr_start_ns = ?, tr_end_ns = ?, segment_count = ?, segments_updated_ns = ? "
                 "WHERE id = ?", (first[0] if first else None, last_end[0] if first else None, count, now_ns, flow_id))


def _drop_unreferenced(conn: sqlite3.Connection, candidates: set[str]) -> list[ObjectRecord]:
    """Delete the records of candidate objects that no segment uses as media or init object; return them."""
    gone = []
    for object_id in sorted(candidates):
        used = conn.execute("SELECT 1 FROM segments WHERE object_id = ? LIMIT 1", (object_id,)).fetchone() or \
            conn.execute("SELECT 1 FROM segments WHERE init_object_id = ? LIMIT 1", (object_id,)).fetchone()
        if used is None:
            row = conn.execute(f"SELECT {OBJECT_COLUMNS} FROM objects WHERE id = ?", (object_id,)).fetchone()
            conn.execute("DELETE FROM objects WHERE id = ?", (object_id,))
            conn.execute("DELETE FROM object_instances WHERE object_id = ?", (object_id,))
            if row is not None:
                gone.append(_object(row))
    return gone


def _context(conn: sqlite3.Connection, request: ContextRequest) -> SegmentContext:
    row = conn.execute(f"SELECT {FLOW_COLUMNS} FROM flows WHERE id = ?", (request.flow_id,)).fetchone()
    if row is None:
        return SegmentContext(None, set(), {}, [])
    applied = _existing(conn, "SELECT event_id FROM applied_events WHERE flow_id = ? AND event_id IN ({})",
                        list(request.event_ids), request.flow_id)
    objects: dict[str, ObjectRecord] = {}
    for chunk in _chunks(list(request.object_ids)):
        marks = ",".join("?" * len(chunk))
        for obj in conn.execute(f"SELECT {OBJECT_COLUMNS} FROM objects WHERE id IN ({marks})", chunk):
            objects[obj[0]] = _object(obj)
    nearby: list[StoredSegment] = []
    if request.window is not None:
        sql, args = _segment_sql(SegmentQuery(request.flow_id, *request.window, limit=-1))
        nearby = [_segment(r) for r in conn.execute(sql, args)]
    init_objects = _existing(conn, "SELECT DISTINCT init_object_id FROM segments WHERE init_object_id IN ({})",
                             list(request.object_ids)) if request.object_ids else set()
    return SegmentContext(_flow(row), applied, objects, nearby, init_objects)


class _Checkpointer:
    """Copies the WAL into the database in the background, so agent commits never pay for it."""

    def __init__(self, path: Path, interval_s: float = 0.5) -> None:
        self._path = path
        self._interval = interval_s
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name="sqlite-checkpointer", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        conn = sqlite3.connect(self._path, isolation_level=None, check_same_thread=False, timeout=30.0)
        try:
            while not self._stopping.wait(self._interval):
                conn.execute("PRAGMA wal_checkpoint(PASSIVE)")
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        finally:
            conn.close()

    def stop(self) -> None:
        self._stopping.set()
        self._thread.join()


def _fields(query: SegmentQuery) -> dict[str, Any]:
    return {name: getattr(query, name) for name in SegmentQuery.__dataclass_fields__}


def _segment_sql(q: SegmentQuery) -> tuple[str, tuple[Any, ...]]:
    """The keyset range scan on (flow_id, start_ns), bounded below by the flow's longest segment."""
    where = ["flow_id = ?", "start_ns < ?", "end_ns > ?"]
    args: list[Any] = [q.flow_id, q.end_ns, q.start_ns]
    if q.start_ns > _UNBOUNDED_BELOW:
        where.append("start_ns >= ? - (SELECT max_segment_ns FROM flows WHERE id = ?)")
        args += [q.start_ns, q.flow_id]
    if q.after_start_ns is not None:
        where.append("start_ns < ?" if q.reverse else "start_ns > ?")
        args.append(q.after_start_ns)
    if q.object_id is not None:
        where.append("object_id = ?")
        args.append(q.object_id)
    order = "DESC" if q.reverse else "ASC"
    sql = f"SELECT {SEGMENT_COLUMNS} FROM segments WHERE {' AND '.join(where)} ORDER BY start_ns {order}"
    if q.limit >= 0:
        sql += " LIMIT ?"
        args.append(q.limit)
    return sql, tuple(args)


def _chunks(items: list[str], size: int = 500) -> list[list[str]]:
    return [items[i : i + size] for i in range(0, len(items), size)]


def _existing(conn: sqlite3.Connection, template: str, ids: list[str], *prefix: Any) -> set[str]:
    found: set[str] = set()
    for chunk in _chunks(ids):
        sql = template.format(",".join("?" * len(chunk)))
        found.update(row[0] for row in conn.execute(sql, (*prefix, *chunk)))
    return found


def _apply_commit(conn: sqlite3.Connection, commit: SegmentCommit) -> None:
    segments, now = commit.segments, commit.now_ns
    if segments:
        conn.executemany(
            f"INSERT INTO segments (flow_id, {SEGMENT_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?)",
            [(commit.flow_id, s.start_ns, s.end_ns, s.object_id, s.init_object_id, s.object_timerange,
              s.doc.decode()) for s in segments],
        )
        start = min(s.start_ns for s in segments)
        end = max(s.end_ns for s in segments)
        longest = max(s.end_ns - s.start_ns for s in segments)
        conn.execute(
            "UPDATE flows SET tr_start_ns = min(coalesce(tr_start_ns, ?), ?),"
            " tr_end_ns = max(coalesce(tr_end_ns, ?), ?), max_segment_ns = max(max_segment_ns, ?),"
            " segment_count = segment_count + ?, segments_updated_ns = ? WHERE id = ?",
            (start, start, end, end, longest, len(segments), now, commit.flow_id),
        )
    if commit.objects:
        conn.executemany(
            "INSERT INTO objects (id, storage_id, allocated_by_flow, content_type, created_ns, registered,"
            " timerange, key_frame_count, init_object_id, first_referenced_by_flow, size, checksum)"
            " VALUES (?, ?, ?, ?, ?, 1, ?, ?, ?, ?, ?, ?)"
            " ON CONFLICT (id) DO UPDATE SET registered = 1, timerange = excluded.timerange,"
            " key_frame_count = excluded.key_frame_count, init_object_id = excluded.init_object_id,"
            " first_referenced_by_flow = excluded.first_referenced_by_flow,"
            " size = coalesce(excluded.size, objects.size),"
            " checksum = coalesce(excluded.checksum, objects.checksum) WHERE objects.registered = 0",
            [(o.object_id, o.storage_id, o.flow_id, o.content_type, o.created_ns, o.timerange,
              o.key_frame_count, o.init_object_id, o.flow_id, o.size, o.checksum) for o in commit.objects],
        )
    if commit.event_ids:
        conn.executemany(
            "INSERT OR IGNORE INTO applied_events (flow_id, event_id, applied_ns) VALUES (?, ?, ?)",
            [(commit.flow_id, e, now) for e in commit.event_ids],
        )
