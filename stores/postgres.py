"""The metadata store on PostgreSQL, shared by several agent workers and API replicas.

Each flow has one writer (the agent owning its partition), but objects are shared across flows and
sources across flows, so two workers can touch the same object or source at once. Row locks keep
that safe under READ COMMITTED, where every statement takes a fresh snapshot:
- a commit locks the objects its new segments name (`FOR KEY SHARE`, in id order) before inserting;
- a delete first removes its segments, then locks the candidate objects `FOR UPDATE` (in id order),
  and only then counts the remaining references, in a new statement. A delete and a concurrent
  reuse therefore serialise, and of two flows dropping their last references concurrently the
  second one to get the lock sees the first one's delete, so exactly one drops the object;
- sources are locked the same way by `put_flow` (share) and by `delete_flow` (update).
A commit whose media object vanished since the caller read it (a delete won the race) raises
`Conflict` rather than leave a segment pointing at a dropped object.

Identifiers and labels use the "C" collation, so ordering and keyset paging follow code points, as
`stores.metadata.sort_key` does, whatever the database's locale. Documents are jsonb (filters run on
them); segment documents stay text so they come back byte for byte.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import AsyncIterator, Collection, Iterable, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any

import asyncpg
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

# Numbered additive migrations: version N is MIGRATIONS[N - 1]. Never edit a released one; append.
MIGRATIONS: tuple[tuple[str, ...], ...] = (
    (
        """CREATE TABLE IF NOT EXISTS sources (
            id text COLLATE "C" PRIMARY KEY, format text NOT NULL, label text COLLATE "C",
            created_ns bigint NOT NULL, updated_ns bigint NOT NULL, doc jsonb NOT NULL)""",
        """CREATE TABLE IF NOT EXISTS flows (
            id text COLLATE "C" PRIMARY KEY, source_id text COLLATE "C" NOT NULL, format text NOT NULL, codec text,
            container text, label text COLLATE "C", read_only boolean NOT NULL DEFAULT false,
            created_ns bigint NOT NULL, metadata_updated_ns bigint NOT NULL, segments_updated_ns bigint,
            tr_start_ns bigint, tr_end_ns bigint, max_segment_ns bigint NOT NULL DEFAULT 0,
            segment_count bigint NOT NULL DEFAULT 0, doc jsonb NOT NULL)""",
        "CREATE INDEX IF NOT EXISTS flows_by_source ON flows (source_id)",
        """CREATE TABLE IF NOT EXISTS segments (
            flow_id text COLLATE "C" NOT NULL, start_ns bigint NOT NULL, end_ns bigint NOT NULL,
            object_id text COLLATE "C" NOT NULL, init_object_id text COLLATE "C", object_timerange text,
            doc text NOT NULL, PRIMARY KEY (flow_id, start_ns))""",
        "CREATE INDEX IF NOT EXISTS segments_by_object ON segments (object_id)",
        ("CREATE INDEX IF NOT EXISTS segments_by_init_object ON segments (init_object_id)"
         " WHERE init_object_id IS NOT NULL"),
        """CREATE TABLE IF NOT EXISTS objects (
            id text COLLATE "C" PRIMARY KEY, storage_id text NOT NULL, allocated_by_flow text COLLATE "C",
            content_type text, created_ns bigint NOT NULL, registered boolean NOT NULL DEFAULT false,
            timerange text, key_frame_count bigint, init_object_id text COLLATE "C",
            first_referenced_by_flow text COLLATE "C", size bigint)""",
        "CREATE INDEX IF NOT EXISTS objects_unregistered ON objects (created_ns) WHERE NOT registered",
        "CREATE INDEX IF NOT EXISTS objects_allocated_by_flow ON objects (allocated_by_flow) WHERE NOT registered",
        """CREATE TABLE IF NOT EXISTS profiles (
            id text COLLATE "C" PRIMARY KEY, format text, codec text, label text, created_ns bigint NOT NULL,
            doc jsonb NOT NULL)""",
        """CREATE TABLE IF NOT EXISTS flow_members (
            collection_id text COLLATE "C" NOT NULL, member_id text COLLATE "C" NOT NULL, role text,
            position integer NOT NULL, PRIMARY KEY (collection_id, member_id))""",
        "CREATE INDEX IF NOT EXISTS flow_members_by_member ON flow_members (member_id)",
        """CREATE TABLE IF NOT EXISTS deletion_requests (
            id text COLLATE "C" PRIMARY KEY, flow_id text NOT NULL, updated_ns bigint NOT NULL, doc jsonb NOT NULL)""",
        """CREATE TABLE IF NOT EXISTS object_instances (
            object_id text COLLATE "C" NOT NULL, label text COLLATE "C" NOT NULL, url text NOT NULL,
            position bigint GENERATED BY DEFAULT AS IDENTITY, PRIMARY KEY (object_id, label))""",
        "CREATE TABLE IF NOT EXISTS service_info (id integer PRIMARY KEY CHECK (id = 1), doc jsonb NOT NULL)",
        """CREATE TABLE IF NOT EXISTS applied_events (
            flow_id text COLLATE "C" NOT NULL, event_id text COLLATE "C" NOT NULL, applied_ns bigint NOT NULL,
            PRIMARY KEY (flow_id, event_id))""",
        # Keyset listings walk these in order (see _sort_terms).
        "CREATE INDEX IF NOT EXISTS flows_by_created ON flows ((-created_ns), id)",
        "CREATE INDEX IF NOT EXISTS flows_by_updated ON flows ((-metadata_updated_ns), id)",
        "CREATE INDEX IF NOT EXISTS flows_by_label ON flows ((label IS NULL), (coalesce(label, '')), id)",
        "CREATE INDEX IF NOT EXISTS sources_by_created ON sources ((-created_ns), id)",
        "CREATE INDEX IF NOT EXISTS sources_by_updated ON sources ((-updated_ns), id)",
        "CREATE INDEX IF NOT EXISTS sources_by_label ON sources ((label IS NULL), (coalesce(label, '')), id)",
    ),
    (  # the object lifecycle: checksums and controlled copies on further backends
        "ALTER TABLE objects ADD COLUMN IF NOT EXISTS checksum text",
        "ALTER TABLE objects ADD COLUMN IF NOT EXISTS copies text[] NOT NULL DEFAULT '{}'",
    ),
)
# Serialises schema changes of processes starting together (any constant unique to this schema will do).
SCHEMA_LOCK_KEY = 0x7A45_0001

FLOW_COLUMNS = (
    "doc, created_ns, metadata_updated_ns, segments_updated_ns, tr_start_ns, tr_end_ns, max_segment_ns,"
    " segment_count, ARRAY(SELECT m.collection_id FROM flow_members m WHERE m.member_id = flows.id"
    " ORDER BY m.collection_id) AS collected_by"
)
# Objects some segment uses as its init object are in use although never registered (registration is for media).
_NOT_AN_INIT_OBJECT = "NOT EXISTS (SELECT 1 FROM segments s WHERE s.init_object_id = objects.id)"
SEGMENT_COLUMNS = "start_ns, end_ns, object_id, init_object_id, object_timerange, doc"
OBJECT_COLUMNS = (
    "id, storage_id, allocated_by_flow, content_type, created_ns, registered, timerange, key_frame_count,"
    " init_object_id, first_referenced_by_flow, size, checksum, copies"
)
# Which sources collect which: through the flows' collections (source_collection / collected_by).
SOURCE_LINKS = (
    "SELECT fc.source_id AS collector, fm.source_id AS member, m.role FROM flow_members m"
    " JOIN flows fc ON fc.id = m.collection_id JOIN flows fm ON fm.id = m.member_id"
)
# Below this, `start - longest segment` prunes nothing (the SQLite store skips the bound there, too).
_UNBOUNDED_BELOW = INT64_MIN // 2


def _lower_start_bound(window_start: str, flow_id: str) -> str:
    """The earliest start a segment overlapping the window can have: window start minus the flow's longest
    segment, in numeric so it cannot overflow bigint, clamped back into it so the index can use it."""
    return (f"(SELECT greatest({window_start}::bigint::numeric - max_segment_ns, {INT64_MIN})::bigint"
            f" FROM flows WHERE id = {flow_id})")


class UnsupportedDatabase(RuntimeError):
    """The database cannot hold TAMS metadata faithfully (it is not UTF8, so ids would not sort by code point)."""


class _Sql:
    """Collects WHERE terms and their numbered parameters."""

    def __init__(self, *args: Any) -> None:
        self.args: list[Any] = list(args)
        self.where: list[str] = []

    def arg(self, value: Any) -> str:
        self.args.append(value)
        return f"${len(self.args)}"

    def clause(self) -> str:
        return " AND ".join(self.where) or "true"


class PostgresMetadataStore:
    """`MetadataStore` on PostgreSQL through an asyncpg pool; every method is one transaction or one statement."""

    migrations: Sequence[Sequence[str]] = MIGRATIONS  # what open() brings the schema up to (tests pin others)

    def __init__(self, dsn: str, *, min_size: int = 1, max_size: int = 10) -> None:
        self.dsn = dsn
        self._min_size = min_size
        self._max_size = max_size
        self._pool: asyncpg.Pool | None = None

    # -- plumbing -------------------------------------------------------------------------------

    @property
    def pool(self) -> asyncpg.Pool:
        if self._pool is None:
            raise RuntimeError("PostgresMetadataStore is not open")
        return self._pool

    @asynccontextmanager
    async def _transaction(self, *, isolation: str | None = None,
                           readonly: bool = False) -> AsyncIterator[asyncpg.Connection]:
        async with self.pool.acquire() as conn, conn.transaction(isolation=isolation, readonly=readonly):
            yield conn

    def _snapshot(self) -> AbstractAsyncContextManager[asyncpg.Connection]:
        """A read-only transaction with one snapshot, for reads that take more than one statement."""
        return self._transaction(isolation="repeatable_read", readonly=True)

    async def open(self) -> None:
        pool = await asyncpg.create_pool(self.dsn, min_size=self._min_size, max_size=self._max_size,
                                         init=_init_connection)
        try:
            async with pool.acquire() as conn:
                await _migrate(conn, self.migrations)
        except BaseException:
            await pool.close()
            raise
        self._pool = pool

    async def close(self) -> None:
        if self._pool is not None:
            pool, self._pool = self._pool, None
            await pool.close()

    # -- flows and sources ----------------------------------------------------------------------

    async def get_flow(self, flow_id: str) -> FlowRecord:
        row = await self.pool.fetchrow(f"SELECT {FLOW_COLUMNS} FROM flows WHERE id = $1", flow_id)
        if row is None:
            raise NotFound(f"flow {flow_id} does not exist")
        return _flow(row)

    async def put_flow(self, doc: dict[str, Any], now_ns: int) -> bool:
        flow_id, source_id, format_ = doc["id"], doc["source_id"], doc["format"]
        items = doc.get("flow_collection") or []
        async with self._transaction() as conn:
            # Member flows before the source, as delete_flow locks its flow before the source: no lock cycle.
            known = await _share_flows(conn, [item["id"] for item in items])
            source_format = await _share_source(conn, source_id, format_, now_ns)
            if source_format != format_:
                raise Conflict(f"source {source_id} has format {source_format}, the flow has {format_}")
            await _replace_members(conn, flow_id, items, known)
            values = (flow_id, source_id, format_, doc.get("codec"), doc.get("container"), doc.get("label"),
                      bool(doc.get("read_only")), now_ns, doc)
            updated = await conn.execute(
                "UPDATE flows SET source_id = $2, format = $3, codec = $4, container = $5, label = $6,"
                " read_only = $7, metadata_updated_ns = $8, doc = $9 WHERE id = $1", *values)
            if updated != "UPDATE 0":
                return False
            await conn.execute(
                "INSERT INTO flows (id, source_id, format, codec, container, label, read_only, metadata_updated_ns,"
                " doc, created_ns) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $8)", *values)
            return True

    async def list_flows(self, query: FlowQuery) -> list[FlowRecord]:
        sql = _Sql()
        order = _keyset(sql, query.listing, updated="metadata_updated_ns")
        for column, value in (("source_id", query.source_id), ("format", query.format), ("codec", query.codec),
                              ("label", query.label)):
            if value is not None:
                sql.where.append(f"{column} = {sql.arg(value)}")
        for path, value in (("{status}", query.status), ("{essence_parameters,frame_width}", query.frame_width),
                            ("{essence_parameters,frame_height}", query.frame_height),
                            ("{profile_id}", query.profile_id)):
            if value is not None:
                sql.where.append(f"doc #> '{path}' = {sql.arg(value)}::jsonb")
        if query.collected_by_ids is not None:
            ids = query.collected_by_ids
            collecting = f" AND m.collection_id = ANY({sql.arg(list(ids))}::text[])" if ids else ""
            sql.where.append(f"{'' if ids else 'NOT '}EXISTS (SELECT 1 FROM flow_members m"
                             f" WHERE m.member_id = flows.id{collecting})")
        if query.init_segments is not None:
            sql.where.append(_init_segments_sql(query.init_segments))
        if query.empty_only:
            sql.where.append("tr_start_ns IS NULL")
        elif query.overlapping is not None:
            sql.where.append(f"tr_start_ns < {sql.arg(query.overlapping[1])}"
                             f" AND tr_end_ns > {sql.arg(query.overlapping[0])}")
        _tag_sql(sql, query.tags)
        rows = await self.pool.fetch(f"SELECT {FLOW_COLUMNS} FROM flows WHERE {sql.clause()} ORDER BY {order}"
                                     f" LIMIT {sql.arg(query.limit)}", *sql.args)
        return [_flow(r) for r in rows]

    async def get_source(self, source_id: str) -> SourceRecord:
        async with self._snapshot() as conn:
            row = await conn.fetchrow("SELECT doc, created_ns, updated_ns FROM sources WHERE id = $1", source_id)
            if row is None:
                raise NotFound(f"source {source_id} does not exist")
            return (await _sources(conn, [row]))[0]

    async def put_source(self, doc: dict[str, Any], now_ns: int) -> None:
        updated = await self.pool.execute("UPDATE sources SET label = $2, updated_ns = $3, doc = $4 WHERE id = $1",
                                          doc["id"], doc.get("label"), now_ns, doc)
        if updated == "UPDATE 0":
            raise NotFound(f"source {doc['id']} does not exist")

    async def list_sources(self, query: SourceQuery) -> list[SourceRecord]:
        sql = _Sql()
        order = _keyset(sql, query.listing, updated="updated_ns")
        for column, value in (("format", query.format), ("label", query.label)):
            if value is not None:
                sql.where.append(f"{column} = {sql.arg(value)}")
        _tag_sql(sql, query.tags)
        if query.collected_by_ids is not None:
            ids = query.collected_by_ids
            collecting = f" AND fc.source_id = ANY({sql.arg(list(ids))}::text[])" if ids else ""
            sql.where.append(f"{'' if ids else 'NOT '}EXISTS ({SOURCE_LINKS}"
                             f" WHERE fm.source_id = sources.id{collecting})")
        async with self._snapshot() as conn:
            rows = await conn.fetch(f"SELECT doc, created_ns, updated_ns FROM sources WHERE {sql.clause()}"
                                    f" ORDER BY {order} LIMIT {sql.arg(query.limit)}", *sql.args)
            return await _sources(conn, rows)

    # -- profiles, deletion requests, service -----------------------------------------------------

    async def create_profile(self, doc: dict[str, Any], now_ns: int) -> None:
        metadata = doc["flow_metadata"]
        inserted = await self.pool.execute(
            "INSERT INTO profiles (id, format, codec, label, created_ns, doc) VALUES ($1, $2, $3, $4, $5, $6)"
            " ON CONFLICT (id) DO NOTHING",
            doc["id"], metadata.get("format"), metadata.get("codec"), doc.get("label"), now_ns, doc)
        if inserted == "INSERT 0 0":
            raise Conflict(f"profile {doc['id']} exists already; profiles cannot be changed")

    async def get_profile(self, profile_id: str) -> ProfileRecord:
        row = await self.pool.fetchrow("SELECT doc, created_ns FROM profiles WHERE id = $1", profile_id)
        if row is None:
            raise NotFound(f"profile {profile_id} does not exist")
        return ProfileRecord(row["doc"], row["created_ns"])

    async def list_profiles(self, *, format: str | None, codec: str | None, label: str | None, after_id: str | None,
                            limit: int) -> list[ProfileRecord]:
        sql = _Sql(after_id or "")
        sql.where.append("id > $1")
        for column, value in (("format", format), ("codec", codec), ("label", label)):
            if value is not None:
                sql.where.append(f"{column} = {sql.arg(value)}")
        rows = await self.pool.fetch(f"SELECT doc, created_ns FROM profiles WHERE {sql.clause()} ORDER BY id"
                                     f" LIMIT {sql.arg(limit)}", *sql.args)
        return [ProfileRecord(r["doc"], r["created_ns"]) for r in rows]

    async def put_deletion_request(self, doc: dict[str, Any], now_ns: int) -> None:
        await self.pool.execute(
            "INSERT INTO deletion_requests (id, flow_id, updated_ns, doc) VALUES ($1, $2, $3, $4)"
            " ON CONFLICT (id) DO UPDATE SET updated_ns = excluded.updated_ns, doc = excluded.doc",
            doc["id"], doc["flow_id"], now_ns, doc)

    async def get_deletion_request(self, request_id: str) -> dict[str, Any]:
        doc = await self.pool.fetchval("SELECT doc FROM deletion_requests WHERE id = $1", request_id)
        if doc is None:
            raise NotFound(f"deletion request {request_id} does not exist")
        return doc

    async def list_deletion_requests(self, *, after_id: str | None, limit: int) -> list[dict[str, Any]]:
        rows = await self.pool.fetch("SELECT doc FROM deletion_requests WHERE id > $1 ORDER BY id LIMIT $2",
                                     after_id or "", limit)
        return [r["doc"] for r in rows]

    async def get_service_info(self) -> dict[str, Any]:
        doc = await self.pool.fetchval("SELECT doc FROM service_info WHERE id = 1")
        return doc if doc is not None else {}

    async def put_service_info(self, info: dict[str, Any]) -> None:
        await self.pool.execute("INSERT INTO service_info (id, doc) VALUES (1, $1)"
                                " ON CONFLICT (id) DO UPDATE SET doc = excluded.doc", info)

    # -- objects --------------------------------------------------------------------------------

    async def allocate_objects(self, allocations: Sequence[ObjectAllocation]) -> None:
        if not allocations:
            return
        ids = [a.object_id for a in allocations]
        async with self._transaction() as conn:
            taken = await conn.fetch("SELECT id FROM objects WHERE id = ANY($1::text[]) ORDER BY id", ids)
            if taken:
                raise Conflict(f"object ids already exist: {', '.join(r['id'] for r in taken[:5])}")
            inserted = await conn.fetch(
                "INSERT INTO objects (id, storage_id, allocated_by_flow, content_type, created_ns)"
                " SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::bigint[])"
                " ON CONFLICT (id) DO NOTHING RETURNING id",
                ids, [a.storage_id for a in allocations], [a.flow_id for a in allocations],
                [a.content_type for a in allocations], [a.created_ns for a in allocations])
            if len(inserted) != len(allocations):  # an id named twice in the batch, or allocated concurrently
                twice = sorted({i for i, n in Counter(ids).items() if n > 1} | (set(ids) - {r["id"] for r in inserted}))
                raise Conflict(f"object ids allocated twice: {', '.join(twice[:5])}")

    async def get_objects(self, object_ids: Collection[str]) -> dict[str, ObjectRecord]:
        ids = list(object_ids)
        if not ids:
            return {}
        rows = await self.pool.fetch(f"SELECT {OBJECT_COLUMNS} FROM objects WHERE id = ANY($1::text[])", ids)
        return {r["id"]: _object(r) for r in rows}

    async def expired_allocations(self, created_before_ns: int, limit: int) -> list[ObjectRecord]:
        rows = await self.pool.fetch(f"SELECT {OBJECT_COLUMNS} FROM objects WHERE NOT registered AND created_ns < $1"
                                     f" AND {_NOT_AN_INIT_OBJECT} ORDER BY created_ns LIMIT $2",
                                     created_before_ns, limit)
        return [_object(r) for r in rows]

    async def drop_allocations(self, object_ids: Collection[str]) -> list[ObjectRecord]:
        ids = list(object_ids)
        if not ids:
            return []
        rows = await self.pool.fetch(f"DELETE FROM objects WHERE id = ANY($1::text[]) AND NOT registered"
                                     f" AND {_NOT_AN_INIT_OBJECT} RETURNING {OBJECT_COLUMNS}", ids)
        return sorted((_object(r) for r in rows), key=lambda o: o.object_id)

    async def add_controlled_copy(self, object_id: str, storage_id: str) -> None:
        async with self._transaction() as conn:
            row = await _lock_storage(conn, object_id)
            if storage_id != row["storage_id"] and storage_id not in row["copies"]:
                await conn.execute("UPDATE objects SET copies = array_append(copies, $2) WHERE id = $1",
                                   object_id, storage_id)

    async def remove_controlled_copy(self, object_id: str, storage_id: str) -> None:
        async with self._transaction() as conn:
            row = await _lock_storage(conn, object_id)
            primary, copies = row["storage_id"], list(row["copies"])
            primary, copies = without_copy(object_id, primary, copies, storage_id)
            await conn.execute("UPDATE objects SET storage_id = $2, copies = $3 WHERE id = $1",
                               object_id, primary, copies)

    async def object_references(self, object_id: str, *, after_flow: str | None, limit: int,
                                flow_tags: TagFilter | None = None) -> list[str]:
        sql = _Sql(object_id, after_flow or "")
        sql.where.append("r.flow_id > $2")
        if flow_tags is not None:
            _tag_sql(sql, flow_tags)
        rows = await self.pool.fetch(
            "SELECT r.flow_id FROM (SELECT flow_id FROM segments WHERE object_id = $1"
            " UNION SELECT flow_id FROM segments WHERE init_object_id = $1) r JOIN flows ON flows.id = r.flow_id"
            f" WHERE {sql.clause()} ORDER BY r.flow_id LIMIT {sql.arg(limit)}", *sql.args)
        return [r["flow_id"] for r in rows]

    async def add_uncontrolled_instances(self, object_id: str, instances: Sequence[tuple[str, str]]) -> None:
        if not instances:
            return
        labels, urls = [label for label, _ in instances], [url for _, url in instances]
        async with self._transaction() as conn:
            existing = dict(await conn.fetch("SELECT label, url FROM object_instances WHERE object_id = $1",
                                             object_id))
            clash = sorted({label for label, url in instances if existing.get(label, url) != url})
            if clash:
                raise Conflict(f"object {object_id} has other instances labelled {', '.join(clash)} already")
            # The identity column numbers rows in insertion order: that is the registration order.
            await conn.execute(
                "INSERT INTO object_instances (object_id, label, url) SELECT $1, label, url"
                " FROM unnest($2::text[], $3::text[]) WITH ORDINALITY AS i(label, url, n) ORDER BY n"
                " ON CONFLICT (object_id, label) DO NOTHING", object_id, labels, urls)
            # A concurrent writer (or this batch itself) may have given a label another URL first.
            stored = dict(await conn.fetch("SELECT label, url FROM object_instances WHERE object_id = $1"
                                           " AND label = ANY($2::text[])", object_id, labels))
            clash = sorted({label for label, url in instances if stored.get(label) != url})
            if clash:
                raise Conflict(f"object {object_id} has other instances labelled {', '.join(clash)} already")

    async def remove_uncontrolled_instance(self, object_id: str, label: str) -> None:
        deleted = await self.pool.execute("DELETE FROM object_instances WHERE object_id = $1 AND label = $2",
                                          object_id, label)
        if deleted == "DELETE 0":
            raise NotFound(f"object {object_id} has no uncontrolled instance labelled {label!r}")

    async def uncontrolled_instances(self, object_ids: Collection[str]) -> dict[str, list[tuple[str, str]]]:
        ids = list(object_ids)
        if not ids:
            return {}
        rows = await self.pool.fetch("SELECT object_id, label, url FROM object_instances"
                                     " WHERE object_id = ANY($1::text[]) ORDER BY object_id, position", ids)
        found: dict[str, list[tuple[str, str]]] = {}
        for r in rows:
            found.setdefault(r["object_id"], []).append((r["label"], r["url"]))
        return found

    # -- segments -------------------------------------------------------------------------------

    async def applied_event_ids(self, flow_id: str, event_ids: Collection[str]) -> set[str]:
        ids = list(event_ids)
        if not ids:
            return set()
        rows = await self.pool.fetch("SELECT event_id FROM applied_events WHERE flow_id = $1"
                                     " AND event_id = ANY($2::text[])", flow_id, ids)
        return {r["event_id"] for r in rows}

    async def segment_context(self, requests: Sequence[ContextRequest]) -> dict[str, SegmentContext]:
        if not requests:
            return {}
        async with self._snapshot() as conn:
            return await _contexts(conn, requests)

    async def commit_segments(self, commits: Sequence[SegmentCommit]) -> None:
        commits = [c for c in commits if c.segments or c.event_ids]
        if not commits:
            return
        async with self._transaction() as conn:
            await _commit(conn, commits)

    async def delete_segments(self, flow_id: str, start_ns: int, end_ns: int, object_id: str | None,
                              now_ns: int, limit: int | None = None) -> Deletion:
        sql = _Sql(flow_id, start_ns, end_ns)
        sql.where += ["flow_id = $1", "start_ns >= $2", "end_ns <= $3"]
        if object_id is not None:
            sql.where.append(f"object_id = {sql.arg(object_id)}")
        covered, covered_args = sql.clause(), list(sql.args)
        limited = "" if limit is None else f" ORDER BY start_ns LIMIT {sql.arg(limit)}"
        async with self._transaction() as conn:
            rows = await conn.fetch(
                f"DELETE FROM segments WHERE flow_id = $1 AND start_ns IN (SELECT start_ns FROM segments"
                f" WHERE {covered}{limited}) RETURNING start_ns, end_ns, object_id, init_object_id", *sql.args)
            if not rows:
                return Deletion(0, None, [])
            more = limit is not None and len(rows) == limit and await conn.fetchval(
                f"SELECT EXISTS (SELECT 1 FROM segments WHERE {covered})", *covered_args)
            await _refresh_flow_extent(conn, flow_id, len(rows), now_ns)
            dropped = await _drop_unreferenced(conn, _object_ids(rows))
            return Deletion(len(rows), _span(rows), dropped, more=bool(more))

    async def delete_flow(self, flow_id: str) -> Deletion:
        async with self._transaction() as conn:
            source_id = await conn.fetchval("DELETE FROM flows WHERE id = $1 RETURNING source_id", flow_id)
            if source_id is None:
                raise NotFound(f"flow {flow_id} does not exist")
            rows = await conn.fetch("DELETE FROM segments WHERE flow_id = $1"
                                    " RETURNING start_ns, end_ns, object_id, init_object_id", flow_id)
            await conn.execute("DELETE FROM applied_events WHERE flow_id = $1", flow_id)
            await conn.execute("DELETE FROM flow_members WHERE collection_id = $1", flow_id)
            source_deleted = source_id if await _drop_source_if_flowless(conn, source_id) else None
            # The flow's unused allocations go too, through the same reference check: an init object is never
            # registered, so one of them may still be named by another flow's segments.
            candidates = _object_ids(rows)
            allocated = {r["id"] for r in await conn.fetch(
                "SELECT id FROM objects WHERE allocated_by_flow = $1 AND NOT registered", flow_id)}
            dropped = await _drop_unreferenced(conn, candidates | allocated)
            dropped.sort(key=lambda o: o.object_id not in candidates)  # the segments' objects, then allocations
            return Deletion(len(rows), _span(rows) if rows else None, dropped, source_deleted)

    async def list_segments(self, query: SegmentQuery) -> SegmentPage:
        sql = _Sql(query.flow_id, query.end_ns, query.start_ns)
        sql.where += ["flow_id = $1", "start_ns < $2", "end_ns > $3"]
        if query.start_ns > _UNBOUNDED_BELOW:
            sql.where.append(f"start_ns >= {_lower_start_bound('$3', '$1')}")
        if query.after_start_ns is not None:
            sql.where.append(f"start_ns {'<' if query.reverse else '>'} {sql.arg(query.after_start_ns)}")
        if query.object_id is not None:
            sql.where.append(f"object_id = {sql.arg(query.object_id)}")
        rows = await self.pool.fetch(
            f"SELECT {SEGMENT_COLUMNS} FROM segments WHERE {sql.clause()}"
            f" ORDER BY start_ns {'DESC' if query.reverse else 'ASC'} LIMIT {sql.arg(query.limit + 1)}", *sql.args)
        return SegmentPage([_segment(r) for r in rows[: query.limit]], len(rows) > query.limit)


# -- schema ---------------------------------------------------------------------------------------


async def _init_connection(conn: asyncpg.Connection) -> None:
    await conn.set_type_codec("jsonb", schema="pg_catalog", encoder=lambda v: orjson.dumps(v).decode(),
                              decoder=orjson.loads, format="text")


async def _migrate(conn: asyncpg.Connection, migrations: Sequence[Sequence[str]]) -> None:
    """Apply the migrations this database has not seen yet, in order, in one transaction. The advisory lock
    makes a second process starting at the same time wait, then find nothing left to do."""
    encoding = await conn.fetchval("SHOW server_encoding")
    if encoding != "UTF8":
        raise UnsupportedDatabase(f"the TAMS metadata database must use UTF8 encoding, not {encoding}")
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock($1)", SCHEMA_LOCK_KEY)
        await conn.execute("CREATE TABLE IF NOT EXISTS schema_version (version integer PRIMARY KEY,"
                           " applied_ns bigint NOT NULL)")
        current = await conn.fetchval("SELECT coalesce(max(version), 0) FROM schema_version")
        for version, statements in enumerate(migrations, start=1):
            if version > current:
                for statement in statements:
                    await conn.execute(statement)
                await conn.execute("INSERT INTO schema_version (version, applied_ns) VALUES ($1, $2)",
                                   version, time.time_ns())


# -- rows -----------------------------------------------------------------------------------------


def _flow(row: asyncpg.Record) -> FlowRecord:
    start, end = row["tr_start_ns"], row["tr_end_ns"]
    return FlowRecord(
        doc=row["doc"], created_ns=row["created_ns"], metadata_updated_ns=row["metadata_updated_ns"],
        segments_updated_ns=row["segments_updated_ns"], extent=None if start is None else (start, end),
        max_segment_ns=row["max_segment_ns"], segment_count=row["segment_count"],
        collected_by=tuple(row["collected_by"]),
    )


async def _sources(conn: asyncpg.Connection, rows: Sequence[asyncpg.Record]) -> list[SourceRecord]:
    """Source records with their collections inferred, for a page of (doc, created_ns, updated_ns) rows."""
    ids = [r["doc"]["id"] for r in rows]
    members: dict[str, dict[str, str | None]] = {}
    collectors: dict[str, set[str]] = {}
    links = await conn.fetch(f"{SOURCE_LINKS} WHERE fc.source_id = ANY($1::text[]) OR fm.source_id = ANY($1::text[])"
                             " ORDER BY m.collection_id, m.position", ids) if ids else []
    for collector, member, role in links:
        members.setdefault(collector, {}).setdefault(member, role)
        collectors.setdefault(member, set()).add(collector)
    return [SourceRecord(
        r["doc"], r["created_ns"], r["updated_ns"],
        source_collection=tuple({"id": m, **({"role": role} if role else {})}
                                for m, role in sorted(members.get(i, {}).items())),
        collected_by=tuple(sorted(collectors.get(i, ()))),
    ) for i, r in zip(ids, rows, strict=True)]


def _object(row: asyncpg.Record) -> ObjectRecord:
    return ObjectRecord(
        object_id=row["id"], storage_id=row["storage_id"], allocated_by_flow=row["allocated_by_flow"],
        content_type=row["content_type"], created_ns=row["created_ns"], registered=row["registered"],
        timerange=row["timerange"], key_frame_count=row["key_frame_count"], init_object_id=row["init_object_id"],
        first_referenced_by_flow=row["first_referenced_by_flow"], size=row["size"], checksum=row["checksum"],
        copies=tuple(row["copies"]),
    )


def _segment(row: asyncpg.Record) -> StoredSegment:
    return StoredSegment(row["start_ns"], row["end_ns"], row["object_id"], row["init_object_id"],
                         row["object_timerange"], row["doc"].encode())


def _object_ids(rows: Iterable[asyncpg.Record]) -> set[str]:
    """Media and init objects named by segment rows."""
    return {id_ for r in rows for id_ in (r["object_id"], r["init_object_id"]) if id_ is not None}


def _span(rows: Sequence[asyncpg.Record]) -> tuple[int, int]:
    return min(r["start_ns"] for r in rows), max(r["end_ns"] for r in rows)


# -- listings and filters -------------------------------------------------------------------------


def _sort_terms(listing: Listing, *, updated: str) -> list[str]:
    """The SQL of `stores.metadata.sort_key` minus its constant `missing` part for dates; the id completes it."""
    if listing.sort_by == "label":
        return ["(label IS NULL)", "coalesce(label, '')", "id"]
    return [f"(-{'created_ns' if listing.sort_by == 'created' else updated})", "id"]


def _keyset(sql: _Sql, listing: Listing, *, updated: str) -> str:
    """Add the keyset condition of `listing.after` to `sql`; return the ORDER BY terms."""
    terms = _sort_terms(listing, updated=updated)
    if listing.after is not None:
        missing, value, after_id = listing.after
        if listing.sort_by == "label":
            after = [f"{sql.arg(bool(missing))}::boolean", f"{sql.arg(value)}::text", f"{sql.arg(after_id)}::text"]
        else:  # a date key is never missing
            after = [f"{sql.arg(value)}::bigint", f"{sql.arg(after_id)}::text"]
        sql.where.append(f"({', '.join(terms)}) {'<' if listing.reverse else '>'} ({', '.join(after)})")
    direction = "DESC" if listing.reverse else "ASC"
    return ", ".join(f"{term} {direction}" for term in terms)


def _tag_sql(sql: _Sql, tags: TagFilter) -> None:
    """Tag filters on `doc`: a string tag is one value, an array tag matches on any element (`?|` tests both)."""
    for name, values in tags.values.items():
        sql.where.append(f"doc -> 'tags' -> {sql.arg(name)}::text ?| {sql.arg(list(values))}::text[]")
    for name, present in tags.exists.items():
        sql.where.append(f"doc -> 'tags' -> {sql.arg(name)}::text IS {'NOT ' if present else ''}NULL")


def _init_segments_sql(wanted: bool) -> str:
    """`essence_parameters.init_segments` as SQLite's json_extract reads it: true or 1 is set; missing, null,
    false or 0 is not."""
    value = "coalesce(nullif(doc #> '{essence_parameters,init_segments}', 'null'), 'false')"
    return f"{value} IN ('true', '1')" if wanted else f"{value} IN ('false', '0')"


# -- writes ---------------------------------------------------------------------------------------


async def _share_source(conn: asyncpg.Connection, source_id: str, format_: str, now_ns: int) -> str:
    """Create the source if it is new (two workers may race to) and lock it against `delete_flow` dropping
    it meanwhile; return its format."""
    for _ in range(3):  # a concurrent delete_flow can drop it between the two statements: then create it again
        await conn.execute("INSERT INTO sources (id, format, created_ns, updated_ns, doc) VALUES ($1, $2, $3, $3, $4)"
                           " ON CONFLICT (id) DO NOTHING", source_id, format_, now_ns,
                           {"id": source_id, "format": format_})
        found = await conn.fetchval("SELECT format FROM sources WHERE id = $1 FOR KEY SHARE", source_id)
        if found is not None:
            return found
    raise Conflict(f"source {source_id} keeps being deleted while flows are created for it")


async def _share_flows(conn: asyncpg.Connection, flow_ids: list[str]) -> set[str]:
    """Which of these flows exist, locked so they cannot be deleted before this transaction ends."""
    if not flow_ids:
        return set()
    return {r["id"] for r in await conn.fetch(
        "SELECT id FROM flows WHERE id = ANY($1::text[]) ORDER BY id FOR KEY SHARE", flow_ids)}


async def _replace_members(conn: asyncpg.Connection, flow_id: str, items: list[dict[str, Any]],
                           known: set[str]) -> None:
    """Keep the membership rows of a flow's collection; every member must be a stored flow (`known`)."""
    ids = [item["id"] for item in items]
    if flow_id in ids:
        raise Conflict(f"flow_collection of {flow_id}: a flow cannot collect itself")
    missing = [i for i in ids if i not in known]
    if missing:
        raise Conflict(f"flow_collection of {flow_id}: no such flows: {', '.join(missing[:5])}")
    await conn.execute("DELETE FROM flow_members WHERE collection_id = $1", flow_id)
    last = {item["id"]: (item.get("role"), i) for i, item in enumerate(items)}  # a repeated member: last one wins
    await conn.execute(
        "INSERT INTO flow_members (collection_id, member_id, role, position)"
        " SELECT $1, * FROM unnest($2::text[], $3::text[], $4::integer[])",
        flow_id, list(last), [role for role, _ in last.values()], [i for _, i in last.values()])


async def _lock_storage(conn: asyncpg.Connection, object_id: str) -> asyncpg.Record:
    row = await conn.fetchrow("SELECT storage_id, copies FROM objects WHERE id = $1 FOR NO KEY UPDATE", object_id)
    if row is None:
        raise NotFound(f"object {object_id} does not exist")
    return row


async def _commit(conn: asyncpg.Connection, commits: Sequence[SegmentCommit]) -> None:
    """Insert every commit's segments, registrations and event ids, and update the flows' stats."""
    segments = [(c.flow_id, s) for c in commits for s in c.segments]
    # Lock what the new segments name, so a concurrent last-reference delete waits for this commit and
    # then sees the new references; in id order, so two batches cannot deadlock.
    named = sorted(_object_ids_of(s for _, s in segments))
    locked = {r["id"] for r in await conn.fetch(
        "SELECT id FROM objects WHERE id = ANY($1::text[]) ORDER BY id FOR KEY SHARE", named)} if named else set()
    registrations = {}
    for c in commits:
        for o in c.objects:
            registrations.setdefault(o.object_id, o)  # the first use wins, as it does row by row
    vanished = sorted({s.object_id for _, s in segments} - locked - set(registrations))
    if vanished:
        raise Conflict(f"objects dropped while the segments using them were being written: {', '.join(vanished[:5])}")
    if registrations:
        regs = [registrations[i] for i in sorted(registrations)]
        await conn.execute(
            "INSERT INTO objects (id, storage_id, allocated_by_flow, content_type, created_ns, timerange,"
            " key_frame_count, init_object_id, first_referenced_by_flow, size, checksum, registered)"
            " SELECT *, true FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::bigint[], $6::text[],"
            " $7::bigint[], $8::text[], $9::text[], $10::bigint[], $11::text[])"
            " ON CONFLICT (id) DO UPDATE SET registered = true, timerange = excluded.timerange,"
            " key_frame_count = excluded.key_frame_count, init_object_id = excluded.init_object_id,"
            " first_referenced_by_flow = excluded.first_referenced_by_flow,"
            " size = coalesce(excluded.size, objects.size), checksum = coalesce(excluded.checksum, objects.checksum)"
            " WHERE NOT objects.registered",
            [o.object_id for o in regs], [o.storage_id for o in regs], [o.flow_id for o in regs],
            [o.content_type for o in regs], [o.created_ns for o in regs], [o.timerange for o in regs],
            [o.key_frame_count for o in regs], [o.init_object_id for o in regs], [o.flow_id for o in regs],
            [o.size for o in regs], [o.checksum for o in regs])
    if segments:
        await conn.execute(
            f"INSERT INTO segments (flow_id, {SEGMENT_COLUMNS}) SELECT * FROM unnest($1::text[], $2::bigint[],"
            " $3::bigint[], $4::text[], $5::text[], $6::text[], $7::text[])",
            [f for f, _ in segments], [s.start_ns for _, s in segments], [s.end_ns for _, s in segments],
            [s.object_id for _, s in segments], [s.init_object_id for _, s in segments],
            [s.object_timerange for _, s in segments], [s.doc.decode() for _, s in segments])
        await _grow_flow_stats(conn, commits)
    events = [(c.flow_id, e, c.now_ns) for c in commits for e in c.event_ids]
    if events:
        await conn.execute(
            "INSERT INTO applied_events (flow_id, event_id, applied_ns)"
            " SELECT * FROM unnest($1::text[], $2::text[], $3::bigint[]) ON CONFLICT DO NOTHING",
            [f for f, _, _ in events], [e for _, e, _ in events], [n for _, _, n in events])


async def _grow_flow_stats(conn: asyncpg.Connection, commits: Sequence[SegmentCommit]) -> None:
    """Widen each flow's extent and longest segment and add to its count: one row per flow."""
    stats: dict[str, list[int]] = {}
    for c in commits:
        if not c.segments:
            continue
        start, end = min(s.start_ns for s in c.segments), max(s.end_ns for s in c.segments)
        longest = max(s.end_ns - s.start_ns for s in c.segments)
        old = stats.get(c.flow_id)
        stats[c.flow_id] = [start, end, longest, len(c.segments), c.now_ns] if old is None else [
            min(old[0], start), max(old[1], end), max(old[2], longest), old[3] + len(c.segments), c.now_ns]
    columns = list(zip(*stats.values(), strict=True))
    await conn.execute(
        "UPDATE flows f SET tr_start_ns = least(f.tr_start_ns, u.start_ns), tr_end_ns = greatest(f.tr_end_ns, u.end_ns),"
        " max_segment_ns = greatest(f.max_segment_ns, u.longest), segment_count = f.segment_count + u.n,"
        " segments_updated_ns = u.now_ns"
        " FROM unnest($1::text[], $2::bigint[], $3::bigint[], $4::bigint[], $5::bigint[], $6::bigint[])"
        " AS u(id, start_ns, end_ns, longest, n, now_ns) WHERE f.id = u.id",
        list(stats), *(list(col) for col in columns))


async def _refresh_flow_extent(conn: asyncpg.Connection, flow_id: str, deleted: int, now_ns: int) -> None:
    """Recompute the flow's extent after a delete: two index probes (the last end is found among the
    segments starting within the longest segment of the last start)."""
    await conn.execute(
        "UPDATE flows SET segment_count = segment_count - $2, segments_updated_ns = $3,"
        " tr_start_ns = (SELECT min(start_ns) FROM segments WHERE flow_id = $1),"
        " tr_end_ns = (SELECT max(end_ns) FROM segments WHERE flow_id = $1 AND start_ns >="
        f" greatest((SELECT max(start_ns) FROM segments WHERE flow_id = $1)::numeric - max_segment_ns, {INT64_MIN})"
        "::bigint) WHERE id = $1", flow_id, deleted, now_ns)


async def _drop_unreferenced(conn: asyncpg.Connection, candidates: set[str]) -> list[ObjectRecord]:
    """Drop the records of candidate objects no segment uses as media or init object any more; return them.

    The lock comes first and the count in a later statement, so the count sees every commit and delete that
    finished while this transaction waited for the lock (READ COMMITTED: each statement has a new snapshot)."""
    if not candidates:
        return []
    ids = sorted(candidates)
    await conn.execute("SELECT 1 FROM objects WHERE id = ANY($1::text[]) ORDER BY id FOR UPDATE", ids)
    unused = [r["id"] for r in await conn.fetch(
        "SELECT c.id FROM unnest($1::text[]) AS c(id) WHERE NOT EXISTS (SELECT 1 FROM segments WHERE object_id = c.id)"
        " AND NOT EXISTS (SELECT 1 FROM segments WHERE init_object_id = c.id) ORDER BY c.id", ids)]
    if not unused:
        return []
    rows = await conn.fetch(f"DELETE FROM objects WHERE id = ANY($1::text[]) RETURNING {OBJECT_COLUMNS}", unused)
    await conn.execute("DELETE FROM object_instances WHERE object_id = ANY($1::text[])", unused)
    return sorted((_object(r) for r in rows), key=lambda o: o.object_id)


async def _drop_source_if_flowless(conn: asyncpg.Connection, source_id: str) -> bool:
    """Delete the source if no flow uses it any more; locked first, so a concurrent put_flow either finishes
    first (and is counted) or waits and then recreates the source."""
    await conn.execute("SELECT 1 FROM sources WHERE id = $1 FOR UPDATE", source_id)
    if await conn.fetchval("SELECT EXISTS (SELECT 1 FROM flows WHERE source_id = $1)", source_id):
        return False
    return await conn.execute("DELETE FROM sources WHERE id = $1", source_id) != "DELETE 0"


# -- segment context ------------------------------------------------------------------------------


def _object_ids_of(segments: Iterable[StoredSegment]) -> set[str]:
    return {id_ for s in segments for id_ in (s.object_id, s.init_object_id) if id_ is not None}


async def _contexts(conn: asyncpg.Connection, requests: Sequence[ContextRequest]) -> dict[str, SegmentContext]:
    """The write rules' view of many flows in five statements, whatever the number of flows."""
    requests = list({r.flow_id: r for r in requests}.values())  # one request per flow: the last one
    flow_ids = [r.flow_id for r in requests]
    flows = {r["id"]: _flow(r) for r in await conn.fetch(
        f"SELECT id, {FLOW_COLUMNS} FROM flows WHERE id = ANY($1::text[])", flow_ids)}
    live = [r for r in requests if r.flow_id in flows]
    events = [(r.flow_id, e) for r in live for e in r.event_ids]
    applied: dict[str, set[str]] = {}
    if events:
        for row in await conn.fetch(
                "SELECT a.flow_id, a.event_id FROM applied_events a"
                " JOIN unnest($1::text[], $2::text[]) AS q(flow_id, event_id) USING (flow_id, event_id)",
                [f for f, _ in events], [e for _, e in events]):
            applied.setdefault(row["flow_id"], set()).add(row["event_id"])
    object_ids = sorted({o for r in live for o in r.object_ids})
    objects: dict[str, ObjectRecord] = {}
    init_objects: set[str] = set()
    if object_ids:
        objects = {r["id"]: _object(r) for r in await conn.fetch(
            f"SELECT {OBJECT_COLUMNS} FROM objects WHERE id = ANY($1::text[])", object_ids)}
        init_objects = {r["init_object_id"] for r in await conn.fetch(
            "SELECT DISTINCT init_object_id FROM segments WHERE init_object_id = ANY($1::text[])", object_ids)}
    windows = [(r.flow_id, *r.window) for r in live if r.window is not None]
    nearby: dict[str, list[StoredSegment]] = {}
    if windows:
        for row in await conn.fetch(
                f"SELECT w.flow_id, {', '.join(f's.{c}' for c in SEGMENT_COLUMNS.split(', '))}"
                " FROM unnest($1::text[], $2::bigint[], $3::bigint[]) AS w(flow_id, start_ns, end_ns)"
                " CROSS JOIN LATERAL (SELECT * FROM segments WHERE flow_id = w.flow_id AND start_ns < w.end_ns"
                f" AND end_ns > w.start_ns AND start_ns >= {_lower_start_bound('w.start_ns', 'w.flow_id')}) s",
                *(list(column) for column in zip(*windows, strict=True))):
            nearby.setdefault(row["flow_id"], []).append(_segment(row))
    contexts: dict[str, SegmentContext] = {}
    for r in requests:
        flow = flows.get(r.flow_id)
        if flow is None:
            contexts[r.flow_id] = SegmentContext(None, set(), {}, [])
            continue
        wanted = set(r.object_ids)
        contexts[r.flow_id] = SegmentContext(
            flow, applied.get(r.flow_id, set()), {i: o for i, o in objects.items() if i in wanted},
            nearby.get(r.flow_id, []) if r.window is not None else [], init_objects & wanted)
    return contexts
