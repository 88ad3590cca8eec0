"""The VAST DB metadata store: `MetadataStore` on the vastdb SDK (an optional extra: `pip install .[vast]`).

Why it is shaped the way it is (../shared/notes/vastdb-notes.md):
- The SDK is synchronous, so every unit of work runs in one transaction on a bounded thread pool, with
  one Session per worker thread (a Session keeps unlocked HTTP sessions, so it is not shared).
- Table metadata is built once at open; a transaction binds it (`tx.table_from_metadata`) without
  catalogue lookups, and selects name their splits and endpoints so they need no stats RPC.
- VAST has no ORDER BY, no unique keys and no conditional writes, and pushes down only ANDs of
  per-column tests: reads push what they can, then filter, sort and page here (keyset); each write
  reads first and then writes by `$row_id` in the same transaction, made race-free by the single
  writer per flow. Reads that could meet duplicate rows pick one deterministically.
- No secondary indexes: helper tables sorted on their lookup key stand in for them (`tags` by name,
  `object_uses` by object id), on clusters with sorted tables (VAST 5.3+).
"""

from __future__ import annotations

import asyncio
import functools
import itertools
import math
import operator
import threading
from collections import Counter
from collections.abc import Callable, Collection, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, TypeVar

import orjson
import pyarrow as pa
from ibis import _
from ibis.common.deferred import Deferred
from vastdb import errors as vast_errors
from vastdb.config import QueryConfig
from vastdb.table_metadata import TableMetadata, TableRef, TableType

from schemas.timing import INT64_MAX, INT64_MIN
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
    sort_key,
    without_copy,
)

T = TypeVar("T")
Row = dict[str, Any]
Predicate = Deferred  # an ibis boolean expression on `_`, bound to a table when a select runs

ROW_ID = "$row_id"
ISIN_CHUNK = 10_000  # values per `isin` predicate: well under the 5 MiB request cap (about 40k uuids)
# Below this the `start - longest segment` bound could overflow int64, and it prunes nothing anyway.
_UNBOUNDED_BELOW = INT64_MIN // 2

_S, _I, _B = pa.string(), pa.int64(), pa.bool_()


class VastSchemaError(RuntimeError):
    """A stored table has a column whose type differs from ours: only additive migrations are automatic."""


# -- table layout --------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TableSpec:
    name: str
    schema: pa.Schema
    sorting_key: tuple[str, ...] = ()  # used where the cluster has sorted tables (VAST 5.3+)


def _spec(name: str, *columns: tuple[str, pa.DataType], sort: tuple[str, ...] = ()) -> TableSpec:
    return TableSpec(name, pa.schema(columns), sort)


# Documents plus the columns filters need (notes §4.5). Times are int64 nanoseconds, docs JSON strings.
TABLES = (
    _spec("sources", ("id", _S), ("format", _S), ("label", _S), ("created_ns", _I), ("updated_ns", _I),
          ("doc", _S)),
    _spec("flows", ("id", _S), ("source_id", _S), ("format", _S), ("codec", _S), ("container", _S), ("label", _S),
          ("read_only", _B), ("created_ns", _I), ("metadata_updated_ns", _I), ("segments_updated_ns", _I),
          ("tr_start_ns", _I), ("tr_end_ns", _I), ("max_segment_ns", _I), ("segment_count", _I), ("doc", _S)),
    _spec("segments", ("flow_id", _S), ("start_ns", _I), ("end_ns", _I), ("object_id", _S),
          ("init_object_id", _S), ("object_timerange", _S), ("doc", _S), sort=("flow_id", "start_ns")),
    _spec("objects", ("id", _S), ("storage_id", _S), ("allocated_by_flow", _S), ("content_type", _S),
          ("created_ns", _I), ("registered", _B), ("timerange", _S), ("key_frame_count", _I),
          ("init_object_id", _S), ("first_referenced_by_flow", _S), ("size", _I), ("checksum", _S),
          ("copies", _S), sort=("id",)),
    # How many of a flow's segments use an object, per role ("media" or "init"): reference counting and
    # init-role checks without scanning segments by object id. Only the flow's own writer changes its rows.
    _spec("object_uses", ("object_id", _S), ("flow_id", _S), ("role", _S), ("segments", _I), sort=("object_id",)),
    _spec("object_instances", ("object_id", _S), ("label", _S), ("url", _S), ("position", _I)),
    _spec("flow_members", ("collection_id", _S), ("member_id", _S), ("role", _S), ("position", _I)),
    # One row per (entity, tag name, string value); value null marks a tag with no string value.
    _spec("tags", ("entity_kind", _S), ("entity_id", _S), ("name", _S), ("value", _S), sort=("entity_kind", "name")),
    _spec("applied_events", ("flow_id", _S), ("event_id", _S), ("applied_ns", _I), sort=("flow_id", "event_id")),
    _spec("profiles", ("id", _S), ("format", _S), ("codec", _S), ("label", _S), ("created_ns", _I), ("doc", _S)),
    _spec("deletion_requests", ("id", _S), ("flow_id", _S), ("updated_ns", _I), ("doc", _S)),
    _spec("service_info", ("id", _S), ("doc", _S)),
)
SPECS = {spec.name: spec for spec in TABLES}

FLOW_COLUMNS = ("id", "doc", "created_ns", "metadata_updated_ns", "segments_updated_ns", "tr_start_ns",
                "tr_end_ns", "max_segment_ns", "segment_count")
FLOW_STATS = ("id", "tr_start_ns", "tr_end_ns", "max_segment_ns", "segment_count", "metadata_updated_ns")
SEGMENT_COLUMNS = ("start_ns", "end_ns", "object_id", "init_object_id", "object_timerange", "doc")
OBJECT_COLUMNS = ("id", "storage_id", "allocated_by_flow", "content_type", "created_ns", "registered", "timerange",
                  "key_frame_count", "init_object_id", "first_referenced_by_flow", "size", "checksum", "copies")
MEDIA, INIT = "media", "init"
SERVICE_KEY = "service"


# -- predicates: only shapes VAST pushes down (tests/test_vast_predicates.py serializes each one) --------------


def all_of(*terms: Predicate | None) -> Predicate | None:
    """AND of the given terms (None terms are left out); None when nothing is left."""
    present = [t for t in terms if t is not None]
    return functools.reduce(operator.and_, present) if present else None


def eq(column: str, value: Any) -> Predicate:
    return _[column].isnull() if value is None else _[column] == value


def isin_chunks(column: str, values: Iterable[Any]) -> list[Predicate]:
    """`column isin values` as predicates of at most ISIN_CHUNK values each; none for no values (never `isin([])`)."""
    unique = sorted(set(values))
    return [_[column].isin(unique[i:i + ISIN_CHUNK]) for i in range(0, len(unique), ISIN_CHUNK)]


def segment_window(flow_id: str, lo: int, hi: int, *, ends_after: int | None = None, ends_by: int | None = None,
                   object_id: str | None = None) -> Predicate:
    """The flow's segments starting in [lo, hi), optionally ending after / by a time and using one object:
    the timerange tests as per-column ranges on the sort key, so VAST can skip to them."""
    return all_of(_.flow_id == flow_id, _.start_ns >= lo, _.start_ns < hi,
                  None if ends_after is None else _.end_ns > ends_after,
                  None if ends_by is None else _.end_ns <= ends_by,
                  None if object_id is None else _.object_id == object_id)


def keyset_predicate(listing: Listing, updated_column: str) -> Predicate | None:
    """A coarse, pushable form of "after the keyset position" (the exact test runs on our side)."""
    if listing.after is None:
        return None
    missing, value, _id = listing.after
    if listing.sort_by != "label":
        if missing != 0 or not isinstance(value, int):
            return None
        column = _["created_ns" if listing.sort_by == "created" else updated_column]
        bound = _clamp(-value)  # the key holds the negated time
        return column >= bound if listing.reverse else column <= bound
    if not isinstance(value, str):
        return None
    if missing == 0:
        return _.label <= value if listing.reverse else _.label.isnull() | (_.label >= value)
    return None if listing.reverse else _.label.isnull()


# -- ordered reads without ORDER BY ----------------------------------------------------------------------------

Fetch = Callable[[int, int, int | None], tuple[pa.Table, bool]]
"""fetch(lo, hi, cap): the rows starting in [lo, hi), at most `cap` of them (None: all), and whether it
stopped at the cap."""


def read_ordered(fetch: Fetch, *, lo: int, hi: int, want: int, width: int, reverse: bool = False,
                 column: str = "start_ns", capped: bool = True) -> list[Row]:
    """The first `want` rows by `column` within [lo, hi) (the last ones when `reverse`), sorted.

    VAST returns rows in no order and `limit_rows` keeps arbitrary ones, so this reads windows of the
    key, next to each other, doubling the width until it has `want` rows or reaches the end. A window
    that hits `cap` may have been cut short, so it is read again at half the width."""
    cap = max(4 * want, 1024) if capped else None
    width = max(1, width)
    parts: list[pa.Table] = []
    have = 0
    while lo < hi and have < want:
        a, b = (max(lo, hi - width), hi) if reverse else (lo, min(hi, lo + width))
        part, truncated = fetch(a, b, cap)
        if truncated and b - a > 1:
            width = max(1, (b - a) // 2)
            continue
        parts.append(part)
        have += part.num_rows
        if reverse:
            hi = a
        else:
            lo = b
        width *= 2
    if not parts:
        return []
    ordered = pa.concat_tables(parts).sort_by([(column, "descending" if reverse else "ascending")])
    return ordered.slice(0, want).to_pylist()


def window_width(extent: tuple[int, int], count: int, want: int) -> int:
    """A first window expected to hold about 2×`want` rows, from the flow's extent and segment count."""
    span = extent[1] - extent[0]
    return max(1, math.ceil(2 * want * span / max(count, 1)))


# -- one transaction's tables ----------------------------------------------------------------------------------


class _Tx:
    """The tables of one transaction, bound from cached metadata; every read is drained before it ends."""

    def __init__(self, tx: Any, metadata: dict[str, TableMetadata], config: QueryConfig) -> None:
        self._tx = tx
        self._metadata = metadata
        self._config = config
        self._tables: dict[str, Any] = {}
        self._row_id_types: dict[str, pa.DataType] = {}

    def _table(self, name: str) -> Any:
        if name not in self._tables:
            self._tables[name] = self._tx.table_from_metadata(self._metadata[name])
        return self._tables[name]

    def scan(self, name: str, columns: Sequence[str], where: Predicate | None = None, *, row_ids: bool = False,
             limit: int | None = None) -> pa.Table:
        """Select into one Arrow table, in no particular order."""
        if limit is not None and limit <= 0:  # the SDK reads limit_rows=0 as "no limit"
            return pa.table({c: pa.array([], SPECS[name].schema.field(c).type) for c in columns})
        predicate = None if where is None else where.resolve(self._metadata[name].ibis_table)
        reader = self._table(name).select(list(columns), predicate, self._config, internal_row_id=row_ids,
                                          limit_rows=limit)  # a copy: the SDK appends $row_id to the list
        result = reader.read_all()
        if row_ids:
            self._row_id_types[name] = result.schema.field(ROW_ID).type
        return result

    def rows(self, name: str, columns: Sequence[str], where: Predicate | None = None, *, row_ids: bool = False,
             limit: int | None = None) -> list[Row]:
        return self.scan(name, columns, where, row_ids=row_ids, limit=limit).to_pylist()

    def rows_in(self, name: str, columns: Sequence[str], column: str, values: Iterable[Any],
                where: Predicate | None = None, *, row_ids: bool = False) -> list[Row]:
        """Rows whose `column` is one of `values` (and that pass `where`), one select per chunk of values."""
        found: list[Row] = []
        for chunk in isin_chunks(column, values):
            found += self.rows(name, columns, all_of(chunk, where), row_ids=row_ids)
        return found

    def insert(self, name: str, rows: Sequence[Row]) -> None:
        if not rows:
            return
        schema = SPECS[name].schema
        unknown = {key for row in rows for key in row} - set(schema.names)
        if unknown:  # from_pylist would drop them silently
            raise ValueError(f"no columns {sorted(unknown)} in table {name}")
        self._table(name).insert(pa.RecordBatch.from_pylist(list(rows), schema=schema))

    def update(self, name: str, rows: Sequence[Row], columns: Sequence[str]) -> None:
        """Write `columns` of rows read (with row ids) in this transaction."""
        if not rows:
            return
        schema = SPECS[name].schema
        arrays = [self._row_ids(name, rows)] + [pa.array([r[c] for r in rows], schema.field(c).type) for c in columns]
        fields = [pa.field(ROW_ID, arrays[0].type)] + [schema.field(c) for c in columns]
        self._table(name).update(pa.RecordBatch.from_arrays(arrays, schema=pa.schema(fields)))

    def delete(self, name: str, rows: Sequence[Row]) -> None:
        """Delete rows read (with row ids) in this transaction; each row once."""
        unique = list({r[ROW_ID]: r for r in rows}.values())
        if unique:
            ids = self._row_ids(name, unique)
            self._table(name).delete(pa.RecordBatch.from_arrays([ids], names=[ROW_ID]))

    def _row_ids(self, name: str, rows: Sequence[Row]) -> pa.Array:
        """Row ids in the type the select returned them (uint64, or decimal128 on sorted tables)."""
        return pa.array([r[ROW_ID] for r in rows], self._row_id_types[name])


# -- row helpers -----------------------------------------------------------------------------------------------


def _rank(value: Any) -> tuple[int, Any]:
    return (0, 0) if value is None else (1, value)


def newest(rows: Iterable[Row], key: str = "id", *rank: str) -> dict[Any, Row]:
    """One row per key: the one with the greatest `rank` columns (then doc), so duplicates read the same way."""
    chosen: dict[Any, Row] = {}
    for row in rows:
        current = chosen.get(row[key])
        if current is None or _row_rank(row, rank) > _row_rank(current, rank):
            chosen[row[key]] = row
    return chosen


def _row_rank(row: Row, rank: Sequence[str]) -> tuple[Any, ...]:
    return (*(_rank(row.get(c)) for c in rank), _rank(row.get("doc")))


def _one(rows: Iterable[Row], *rank: str) -> Row | None:
    chosen = newest(rows, "id", *rank)
    return next(iter(chosen.values()), None)


def _loads(doc: str) -> Any:
    return orjson.loads(doc)


def _dumps(value: Any) -> str:
    return orjson.dumps(value).decode()


def _flow_record(row: Row, collected_by: Iterable[str]) -> FlowRecord:
    extent = None if row["tr_start_ns"] is None else (row["tr_start_ns"], row["tr_end_ns"])
    return FlowRecord(
        doc=_loads(row["doc"]), created_ns=row["created_ns"], metadata_updated_ns=row["metadata_updated_ns"],
        segments_updated_ns=row["segments_updated_ns"], extent=extent, max_segment_ns=row["max_segment_ns"] or 0,
        segment_count=row["segment_count"] or 0, collected_by=tuple(sorted(set(collected_by))),
    )


def _object_record(row: Row) -> ObjectRecord:
    return ObjectRecord(
        object_id=row["id"], storage_id=row["storage_id"], allocated_by_flow=row["allocated_by_flow"],
        content_type=row["content_type"], created_ns=row["created_ns"], registered=bool(row["registered"]),
        timerange=row["timerange"], key_frame_count=row["key_frame_count"], init_object_id=row["init_object_id"],
        first_referenced_by_flow=row["first_referenced_by_flow"], size=row["size"], checksum=row["checksum"],
        copies=tuple(_loads(row["copies"] or "[]")),
    )


def _segment(row: Row) -> StoredSegment:
    return StoredSegment(row["start_ns"], row["end_ns"], row["object_id"], row["init_object_id"],
                         row["object_timerange"], row["doc"].encode())


def _clamp(value: int) -> int:
    return max(INT64_MIN, min(INT64_MAX, value))


def _comparable(key: tuple[int, int | str, str]) -> tuple[Any, ...]:
    """A sort key Python can compare when a paging key mixes types (SQL orders numbers before text)."""
    missing, value, item_id = key
    return (missing, (0, value) if isinstance(value, int) else (1, value), item_id)


def tag_pairs(doc: dict[str, Any]) -> set[tuple[str, str | None]]:
    """The `tags` rows of a document: each string value, each string element of an array value, and a
    value-less row for a tag that has no string value (so `tag_exists` still sees it)."""
    pairs: set[tuple[str, str | None]] = set()
    tags = doc.get("tags")
    for name, value in (tags.items() if isinstance(tags, dict) else ()):
        values = [value] if isinstance(value, str) else [v for v in value if isinstance(v, str)] \
            if isinstance(value, list) else []
        pairs |= {(name, v) for v in values} or {(name, None)}
    return pairs


def _flow_doc_matches(doc: dict[str, Any], query: FlowQuery) -> bool:
    """The flow filters that live inside the document (VAST cannot look into JSON)."""
    essence = doc.get("essence_parameters")
    essence = essence if isinstance(essence, dict) else {}
    checks = ((query.status, doc.get("status")), (query.frame_width, essence.get("frame_width")),
              (query.frame_height, essence.get("frame_height")), (query.profile_id, doc.get("profile_id")))
    if any(wanted is not None and have != wanted for wanted, have in checks):
        return False
    return query.init_segments is None or (essence.get("init_segments") or 0) == int(query.init_segments)


# -- the store -------------------------------------------------------------------------------------------------


class VastMetadataStore:
    """`MetadataStore` on VAST DB: one bucket, one schema of the tables in `TABLES`."""

    def __init__(self, *, session_factory: Callable[[], Any], bucket: str, schema: str, max_workers: int = 8,
                 timeout_s: float = 30.0, data_endpoints: Sequence[str] | None = None) -> None:
        """`session_factory()` returns a vastdb Session (set its own `timeout` per request); `timeout_s`
        bounds each read here; `data_endpoints` default to the session's endpoint."""
        self._session_factory = session_factory
        self._bucket = bucket
        self._schema = schema
        self._timeout_s = timeout_s
        self._data_endpoints = list(data_endpoints) if data_endpoints else None
        self._pool = ThreadPoolExecutor(max_workers, thread_name_prefix="vastdb")
        self._local = threading.local()
        self._metadata: dict[str, TableMetadata] = {}

    # -- plumbing -------------------------------------------------------------------------------------------

    def _session(self) -> tuple[Any, QueryConfig]:
        """This worker thread's session and query config, made on first use."""
        if getattr(self._local, "session", None) is None:
            session = self._session_factory()
            endpoints = self._data_endpoints or _endpoints_of(session)
            # Named splits and endpoints: a select then needs neither table stats nor VIP discovery.
            self._local.config = QueryConfig(num_splits=1, data_endpoints=endpoints, query_id="tams")
            self._local.session = session
        return self._local.session, self._local.config

    def _in_transaction(self, work: Callable[[_Tx], T]) -> T:
        session, config = self._session()
        with session.transaction() as tx:
            return work(_Tx(tx, self._metadata, config))

    async def _read(self, work: Callable[[_Tx], T]) -> T:
        future = asyncio.get_running_loop().run_in_executor(self._pool, self._in_transaction, work)
        return await asyncio.wait_for(future, self._timeout_s)

    async def _write(self, work: Callable[[_Tx], T]) -> T:
        # No deadline here: abandoning a write would not stop it committing. Each RPC is bounded by the
        # session's own timeout.
        return await asyncio.get_running_loop().run_in_executor(self._pool, self._in_transaction, work)

    async def open(self) -> None:
        self._metadata = await asyncio.get_running_loop().run_in_executor(self._pool, self._create_tables)

    def _create_tables(self) -> dict[str, TableMetadata]:
        """Create the schema and tables if missing, add columns they lack, and build their metadata once."""
        session, _config = self._session()
        sorted_ok = _has_sorted_tables(session)
        metadata: dict[str, TableMetadata] = {}
        with session.transaction() as tx:
            schema = tx.bucket(self._bucket).create_schema(self._schema, fail_if_exists=False)
            for spec in TABLES:
                table = schema.create_table(spec.name, spec.schema, fail_if_exists=False,
                                            sorting_key=list(spec.sorting_key) if sorted_ok else [])
                _migrate(table, spec)
                table_type = TableType.Elysium if table.sorted_table else TableType.Regular
                metadata[spec.name] = TableMetadata(TableRef(self._bucket, self._schema, spec.name), spec.schema,
                                                    table_type)
        return metadata

    async def close(self) -> None:
        self._pool.shutdown(wait=True)

    # -- flows and sources ----------------------------------------------------------------------------------

    async def get_flow(self, flow_id: str) -> FlowRecord:
        def work(tx: _Tx) -> FlowRecord:
            row = _one(tx.rows("flows", FLOW_COLUMNS, _.id == flow_id), "metadata_updated_ns")
            if row is None:
                raise NotFound(f"flow {flow_id} does not exist")
            return _flow_record(row, _collectors(tx, [flow_id]).get(flow_id, ()))

        return await self._read(work)

    async def put_flow(self, doc: dict[str, Any], now_ns: int) -> bool:
        flow_id, source_id = doc["id"], doc["source_id"]

        def work(tx: _Tx) -> bool:
            sources = tx.rows("sources", ["id", "format"], _.id == source_id)
            if sources and sources[0]["format"] != doc["format"]:
                raise Conflict(f"source {source_id} has format {sources[0]['format']}, the flow has {doc['format']}")
            members = _checked_members(tx, flow_id, doc.get("flow_collection") or [])
            old_members = tx.rows("flow_members", ["member_id"], _.collection_id == flow_id, row_ids=True)
            current = tx.rows("flows", ["id", "doc"], _.id == flow_id, row_ids=True)
            tags = _TagDiff.read(tx, "flow", flow_id, doc, [_loads(r["doc"]) for r in current])
            # writes, after every read
            if not sources:
                implicit = {"id": source_id, "format": doc["format"]}
                tx.insert("sources", [{**implicit, "created_ns": now_ns, "updated_ns": now_ns,
                                       "doc": _dumps(implicit)}])
            tx.delete("flow_members", old_members)
            tx.insert("flow_members", members)
            values = {"source_id": source_id, "format": doc["format"], "codec": doc.get("codec"),
                      "container": doc.get("container"), "label": doc.get("label"),
                      "read_only": bool(doc.get("read_only")), "metadata_updated_ns": now_ns, "doc": _dumps(doc)}
            tags.write(tx)
            if current:
                tx.update("flows", [{**r, **values} for r in current], list(values))
                return False
            tx.insert("flows", [{**values, "id": flow_id, "created_ns": now_ns, "max_segment_ns": 0,
                                 "segment_count": 0}])
            return True

        return await self._write(work)

    async def list_flows(self, query: FlowQuery) -> list[FlowRecord]:
        def work(tx: _Tx) -> list[FlowRecord]:
            where = all_of(*(eq(c, v) for c, v in (("source_id", query.source_id), ("format", query.format),
                                                    ("codec", query.codec), ("label", query.label)) if v is not None))
            if query.empty_only:
                where = all_of(where, _.tr_start_ns.isnull())
            elif query.overlapping is not None:
                where = all_of(where, _.tr_start_ns < query.overlapping[1], _.tr_end_ns > query.overlapping[0])
            allowed, excluded = _tagged(tx, "flow", query.tags)
            if query.collected_by_ids is not None:
                ids = query.collected_by_ids
                members = {r["member_id"] for r in (tx.rows_in("flow_members", ["member_id"], "collection_id", ids)
                                                    if ids else tx.rows("flow_members", ["member_id"]))}
                allowed, excluded = _collected(allowed, excluded, members, by_any=bool(ids))
            page = _listing(tx, "flows", FLOW_COLUMNS, query.listing, "metadata_updated_ns", where, allowed,
                            excluded, query.limit, lambda row: _flow_doc_matches(_loads(row["doc"]), query))
            collectors = _collectors(tx, [r["id"] for r in page])
            return [_flow_record(r, collectors.get(r["id"], ())) for r in page]

        return await self._read(work)

    async def get_source(self, source_id: str) -> SourceRecord:
        def work(tx: _Tx) -> SourceRecord:
            row = _one(tx.rows("sources", ["id", "doc", "created_ns", "updated_ns"], _.id == source_id), "updated_ns")
            if row is None:
                raise NotFound(f"source {source_id} does not exist")
            return _source_records(tx, [row])[0]

        return await self._read(work)

    async def put_source(self, doc: dict[str, Any], now_ns: int) -> None:
        source_id = doc["id"]

        def work(tx: _Tx) -> None:
            rows = tx.rows("sources", ["id", "doc"], _.id == source_id, row_ids=True)
            if not rows:
                raise NotFound(f"source {source_id} does not exist")
            tags = _TagDiff.read(tx, "source", source_id, doc, [_loads(r["doc"]) for r in rows])
            values = {"label": doc.get("label"), "updated_ns": now_ns, "doc": _dumps(doc)}
            tx.update("sources", [{**r, **values} for r in rows], list(values))
            tags.write(tx)

        await self._write(work)

    async def list_sources(self, query: SourceQuery) -> list[SourceRecord]:
        def work(tx: _Tx) -> list[SourceRecord]:
            where = all_of(*(eq(c, v) for c, v in (("format", query.format), ("label", query.label)) if v is not None))
            allowed, excluded = _tagged(tx, "source", query.tags)
            if query.collected_by_ids is not None:
                ids = query.collected_by_ids
                links = _source_links(tx, _member_rows(tx, "collection_id", _flows_of_sources(tx, ids))
                                      if ids else tx.rows("flow_members", MEMBER_COLUMNS))
                members = {member for _collector, member, _role in links}
                allowed, excluded = _collected(allowed, excluded, members, by_any=bool(ids))
            page = _listing(tx, "sources", ("id", "doc", "created_ns", "updated_ns"), query.listing, "updated_ns",
                            where, allowed, excluded, query.limit, None)
            return _source_records(tx, page)

        return await self._read(work)

    # -- profiles, deletion requests, service -----------------------------------------------------------------

    async def create_profile(self, doc: dict[str, Any], now_ns: int) -> None:
        metadata = doc["flow_metadata"]

        def work(tx: _Tx) -> None:
            if tx.rows("profiles", ["id"], _.id == doc["id"], limit=1):
                raise Conflict(f"profile {doc['id']} exists already; profiles cannot be changed")
            tx.insert("profiles", [{"id": doc["id"], "format": metadata.get("format"), "codec": metadata.get("codec"),
                                    "label": doc.get("label"), "created_ns": now_ns, "doc": _dumps(doc)}])

        await self._write(work)

    async def get_profile(self, profile_id: str) -> ProfileRecord:
        def work(tx: _Tx) -> ProfileRecord:
            row = _one(tx.rows("profiles", ["id", "doc", "created_ns"], _.id == profile_id), "created_ns")
            if row is None:
                raise NotFound(f"profile {profile_id} does not exist")
            return ProfileRecord(_loads(row["doc"]), row["created_ns"])

        return await self._read(work)

    async def list_profiles(self, *, format: str | None, codec: str | None, label: str | None, after_id: str | None,
                            limit: int) -> list[ProfileRecord]:
        where = all_of(_.id > (after_id or ""), *(eq(c, v) for c, v in (("format", format), ("codec", codec),
                                                                          ("label", label)) if v is not None))

        def work(tx: _Tx) -> list[ProfileRecord]:
            rows = newest(tx.rows("profiles", ["id", "doc", "created_ns"], where), "id", "created_ns")
            return [ProfileRecord(_loads(r["doc"]), r["created_ns"]) for _id, r in sorted(rows.items())[:max(limit, 0)]]

        return await self._read(work)

    async def put_deletion_request(self, doc: dict[str, Any], now_ns: int) -> None:
        def work(tx: _Tx) -> None:
            current = tx.rows("deletion_requests", ["id"], _.id == doc["id"], row_ids=True)
            values = {"updated_ns": now_ns, "doc": _dumps(doc)}
            if current:
                tx.update("deletion_requests", [{**r, **values} for r in current], list(values))
            else:
                tx.insert("deletion_requests", [{**values, "id": doc["id"], "flow_id": doc["flow_id"]}])

        await self._write(work)

    async def get_deletion_request(self, request_id: str) -> dict[str, Any]:
        def work(tx: _Tx) -> dict[str, Any]:
            row = _one(tx.rows("deletion_requests", ["id", "doc", "updated_ns"], _.id == request_id), "updated_ns")
            if row is None:
                raise NotFound(f"deletion request {request_id} does not exist")
            return _loads(row["doc"])

        return await self._read(work)

    async def list_deletion_requests(self, *, after_id: str | None, limit: int) -> list[dict[str, Any]]:
        def work(tx: _Tx) -> list[dict[str, Any]]:
            rows = newest(tx.rows("deletion_requests", ["id", "doc", "updated_ns"], _.id > (after_id or "")), "id",
                          "updated_ns")
            return [_loads(r["doc"]) for _id, r in sorted(rows.items())[:max(limit, 0)]]

        return await self._read(work)

    async def get_service_info(self) -> dict[str, Any]:
        def work(tx: _Tx) -> dict[str, Any]:
            row = _one(tx.rows("service_info", ["id", "doc"], _.id == SERVICE_KEY))
            return _loads(row["doc"]) if row else {}

        return await self._read(work)

    async def put_service_info(self, info: dict[str, Any]) -> None:
        def work(tx: _Tx) -> None:
            current = tx.rows("service_info", ["id"], _.id == SERVICE_KEY, row_ids=True)
            if current:
                tx.update("service_info", [{**r, "doc": _dumps(info)} for r in current], ["doc"])
            else:
                tx.insert("service_info", [{"id": SERVICE_KEY, "doc": _dumps(info)}])

        await self._write(work)

    # -- objects ----------------------------------------------------------------------------------------------

    async def allocate_objects(self, allocations: Sequence[ObjectAllocation]) -> None:
        ids = [a.object_id for a in allocations]

        def work(tx: _Tx) -> None:
            taken = {r["id"] for r in tx.rows_in("objects", ["id"], "id", ids)}
            taken |= {i for i, n in Counter(ids).items() if n > 1}
            if taken:
                raise Conflict(f"object ids already exist: {', '.join(sorted(taken)[:5])}")
            tx.insert("objects", [{"id": a.object_id, "storage_id": a.storage_id, "allocated_by_flow": a.flow_id,
                                   "content_type": a.content_type, "created_ns": a.created_ns, "registered": False,
                                   "copies": "[]"} for a in allocations])

        if allocations:
            await self._write(work)

    async def get_objects(self, object_ids: Collection[str]) -> dict[str, ObjectRecord]:
        def work(tx: _Tx) -> dict[str, ObjectRecord]:
            return _objects(tx, object_ids)

        return await self._read(work) if object_ids else {}

    async def expired_allocations(self, created_before_ns: int, limit: int) -> list[ObjectRecord]:
        def work(tx: _Tx) -> list[ObjectRecord]:
            rows = _unused_allocations(tx, _.created_ns < created_before_ns, limit)
            return [_object_record(r) for r in newest(rows, "id", "created_ns").values()][:max(limit, 0)]

        return await self._read(work)

    async def drop_allocations(self, object_ids: Collection[str]) -> list[ObjectRecord]:
        def work(tx: _Tx) -> list[ObjectRecord]:
            rows = tx.rows_in("objects", OBJECT_COLUMNS, "id", object_ids, eq("registered", False), row_ids=True)
            in_use = _init_objects(tx, {r["id"] for r in rows})
            rows = [r for r in rows if r["id"] not in in_use]
            tx.delete("objects", rows)
            return [_object_record(r) for _id, r in sorted(newest(rows, "id", "created_ns").items())]

        return await self._write(work) if object_ids else []

    async def add_controlled_copy(self, object_id: str, storage_id: str) -> None:
        def work(tx: _Tx) -> None:
            rows = _object_rows(tx, object_id)
            primary, copies = rows[0]["storage_id"], _loads(rows[0]["copies"] or "[]")
            if storage_id != primary and storage_id not in copies:
                tx.update("objects", [{**r, "copies": _dumps([*copies, storage_id])} for r in rows], ["copies"])

        await self._write(work)

    async def remove_controlled_copy(self, object_id: str, storage_id: str) -> None:
        def work(tx: _Tx) -> None:
            rows = _object_rows(tx, object_id)
            primary, copies = rows[0]["storage_id"], _loads(rows[0]["copies"] or "[]")
            primary, copies = without_copy(object_id, primary, copies, storage_id)
            tx.update("objects", [{**r, "storage_id": primary, "copies": _dumps(copies)} for r in rows],
                      ["storage_id", "copies"])

        await self._write(work)

    async def object_references(self, object_id: str, *, after_flow: str | None, limit: int,
                                flow_tags: TagFilter | None = None) -> list[str]:
        def work(tx: _Tx) -> list[str]:
            uses = tx.rows("object_uses", ["flow_id", "segments"], _.object_id == object_id)
            flow_ids = {u["flow_id"] for u in uses if u["segments"] > 0 and u["flow_id"] > (after_flow or "")}
            existing = {r["id"] for r in tx.rows_in("flows", ["id"], "id", flow_ids)}
            if flow_tags is not None:
                allowed, excluded = _tagged(tx, "flow", flow_tags)
                existing = (existing if allowed is None else existing & allowed) - excluded
            return sorted(existing)[:max(limit, 0)]

        return await self._read(work)

    async def add_uncontrolled_instances(self, object_id: str, instances: Sequence[tuple[str, str]]) -> None:
        wanted: dict[str, str] = {}
        for label, url in instances:
            if wanted.setdefault(label, url) != url:
                raise Conflict(f"two URLs for the instance label {label!r} of object {object_id}")

        def work(tx: _Tx) -> None:
            rows = tx.rows("object_instances", ["label", "url", "position"], _.object_id == object_id)
            known = {r["label"]: r["url"] for r in rows}
            clash = sorted(label for label, url in wanted.items() if known.get(label, url) != url)
            if clash:
                raise Conflict(f"object {object_id} has other instances labelled {', '.join(clash)} already")
            start = max((r["position"] for r in rows), default=-1) + 1
            new = [(label, url) for label, url in wanted.items() if label not in known]
            tx.insert("object_instances", [{"object_id": object_id, "label": label, "url": url, "position": start + i}
                                           for i, (label, url) in enumerate(new)])

        if wanted:
            await self._write(work)

    async def remove_uncontrolled_instance(self, object_id: str, label: str) -> None:
        def work(tx: _Tx) -> None:
            rows = tx.rows("object_instances", ["label"], (_.object_id == object_id) & (_.label == label),
                           row_ids=True)
            if not rows:
                raise NotFound(f"object {object_id} has no uncontrolled instance labelled {label!r}")
            tx.delete("object_instances", rows)

        await self._write(work)

    async def uncontrolled_instances(self, object_ids: Collection[str]) -> dict[str, list[tuple[str, str]]]:
        def work(tx: _Tx) -> dict[str, list[tuple[str, str]]]:
            rows = tx.rows_in("object_instances", ["object_id", "label", "url", "position"], "object_id", object_ids)
            found: dict[str, list[tuple[str, str]]] = {}
            seen: set[tuple[str, str]] = set()
            for r in sorted(rows, key=lambda r: (r["object_id"], r["position"], r["label"])):
                if (r["object_id"], r["label"]) not in seen:
                    seen.add((r["object_id"], r["label"]))
                    found.setdefault(r["object_id"], []).append((r["label"], r["url"]))
            return found

        return await self._read(work) if object_ids else {}

    # -- segments ---------------------------------------------------------------------------------------------

    async def applied_event_ids(self, flow_id: str, event_ids: Collection[str]) -> set[str]:
        def work(tx: _Tx) -> set[str]:
            return {r["event_id"] for r in tx.rows_in("applied_events", ["event_id"], "event_id", event_ids,
                                                      _.flow_id == flow_id)}

        return await self._read(work) if event_ids else set()

    async def segment_context(self, requests: Sequence[ContextRequest]) -> dict[str, SegmentContext]:
        def work(tx: _Tx) -> dict[str, SegmentContext]:
            flows = newest(tx.rows_in("flows", FLOW_COLUMNS, "id", [r.flow_id for r in requests]), "id",
                           "metadata_updated_ns")
            live = [r for r in requests if r.flow_id in flows]
            applied = tx.rows_in("applied_events", ["flow_id", "event_id"], "event_id",
                                 {e for r in live for e in r.event_ids}, all_of(*isin_chunks("flow_id", flows))
                                 if len(flows) <= ISIN_CHUNK else None)
            named = {o for r in live for o in r.object_ids}
            objects = _objects(tx, named)
            init_uses = _init_objects(tx, named)
            collectors = _collectors(tx, list(flows))
            contexts = {r.flow_id: SegmentContext(None, set(), {}, []) for r in requests}
            for r in live:
                flow = _flow_record(flows[r.flow_id], collectors.get(r.flow_id, ()))
                seen = {a["event_id"] for a in applied if a["flow_id"] == r.flow_id}
                contexts[r.flow_id] = SegmentContext(
                    flow, seen & set(r.event_ids), {o: objects[o] for o in r.object_ids if o in objects},
                    _nearby(tx, flow, r.window), {o for o in r.object_ids if o in init_uses})
            return contexts

        return await self._read(work) if requests else {}

    async def commit_segments(self, commits: Sequence[SegmentCommit]) -> None:
        commits = [c for c in commits if c.segments or c.event_ids]
        if commits:
            await self._write(lambda tx: _Commit(commits).apply(tx))

    async def delete_segments(self, flow_id: str, start_ns: int, end_ns: int, object_id: str | None,
                              now_ns: int, limit: int | None = None) -> Deletion:
        def work(tx: _Tx) -> Deletion:
            flow_rows = tx.rows("flows", FLOW_STATS, _.id == flow_id, row_ids=True)
            flow = _one(flow_rows, "metadata_updated_ns")
            if flow is None or flow["tr_start_ns"] is None:
                return Deletion(0, None, [])
            extent = (flow["tr_start_ns"], flow["tr_end_ns"])
            lo, hi = max(start_ns, extent[0]), min(end_ns, extent[1])
            columns = ["start_ns", "end_ns", "object_id", "init_object_id"]

            def fetch(a: int, b: int, cap: int | None) -> tuple[pa.Table, bool]:
                part = tx.scan("segments", columns, segment_window(flow_id, a, b, ends_by=end_ns, object_id=object_id),
                               row_ids=True, limit=cap)
                return part, cap is not None and part.num_rows >= cap

            if limit is None:  # everything covered: one window, uncapped
                rows = read_ordered(fetch, lo=lo, hi=hi, want=INT64_MAX, width=hi - lo, capped=False)
            else:
                rows = read_ordered(fetch, lo=lo, hi=hi, want=limit + 1,
                                    width=window_width(extent, flow["segment_count"], limit + 1))
            more = limit is not None and len(rows) > limit
            rows = rows[:limit] if more else rows
            if not rows:
                return Deletion(0, None, [])
            stats = _stats_after_delete(tx, flow_id, flow, rows)
            unreferenced = _Unreference(tx, flow_id, rows, whole_flow=False)
            tx.delete("segments", rows)
            tx.update("flows", [{**r, **stats, "segments_updated_ns": now_ns} for r in flow_rows],
                      [*stats, "segments_updated_ns"])
            return Deletion(len(rows), (min(r["start_ns"] for r in rows), max(r["end_ns"] for r in rows)),
                            unreferenced.write(tx), more=more)

        return await self._write(work)

    async def delete_flow(self, flow_id: str) -> Deletion:
        def work(tx: _Tx) -> Deletion:
            flows = tx.rows("flows", ["id", "source_id", "metadata_updated_ns", "doc"], _.id == flow_id, row_ids=True)
            if not flows:
                raise NotFound(f"flow {flow_id} does not exist")
            source_id = _one(flows, "metadata_updated_ns")["source_id"]  # type: ignore[index]
            segments = tx.rows("segments", ["start_ns", "end_ns", "object_id", "init_object_id"],
                               _.flow_id == flow_id, row_ids=True)
            events = tx.rows("applied_events", ["event_id"], _.flow_id == flow_id, row_ids=True)
            members = tx.rows("flow_members", ["member_id"], _.collection_id == flow_id, row_ids=True)
            allocated = tx.rows("objects", OBJECT_COLUMNS, (_.allocated_by_flow == flow_id) & eq("registered", False),
                                row_ids=True)
            in_use = _init_objects(tx, {r["id"] for r in allocated}, other_than_flow=flow_id)
            allocated = [r for r in allocated if r["id"] not in in_use]
            allocated_instances = tx.rows_in("object_instances", ["object_id"], "object_id",
                                             {r["id"] for r in allocated}, row_ids=True)
            siblings = [r for r in tx.rows("flows", ["id"], _.source_id == source_id) if r["id"] != flow_id]
            source_rows = [] if siblings else tx.rows("sources", ["id", "doc"], _.id == source_id, row_ids=True)
            tags = _TagDiff.read(tx, "flow", flow_id, {}, [_loads(r["doc"]) for r in flows]).stale
            tags += _TagDiff.read(tx, "source", source_id, {}, [_loads(r["doc"]) for r in source_rows]).stale
            unreferenced = _Unreference(tx, flow_id, segments, whole_flow=True)
            # writes
            for table, rows in (("segments", segments), ("applied_events", events), ("flows", flows),
                                ("flow_members", members), ("sources", source_rows), ("tags", tags)):
                tx.delete(table, rows)
            dropped = unreferenced.write(tx)  # the flow's allocations it used itself are among these already
            gone = set(unreferenced.gone)
            allocated = [r for r in allocated if r["id"] not in gone]
            tx.delete("objects", allocated)
            tx.delete("object_instances", [r for r in allocated_instances if r["object_id"] not in gone])
            span = (min(r["start_ns"] for r in segments), max(r["end_ns"] for r in segments)) if segments else None
            return Deletion(len(segments), span, dropped + [_object_record(r) for r in allocated],
                            None if siblings else source_id)

        return await self._write(work)

    async def list_segments(self, query: SegmentQuery) -> SegmentPage:
        def work(tx: _Tx) -> SegmentPage:
            flow = _one(tx.rows("flows", FLOW_STATS, _.id == query.flow_id), "metadata_updated_ns")
            rows = _segment_page(tx, flow, query, query.limit + 1) if flow else []
            return SegmentPage([_segment(r) for r in rows[:query.limit]], len(rows) > query.limit)

        return await self._read(work)


# -- reads shared by several operations ------------------------------------------------------------------------

MEMBER_COLUMNS = ("collection_id", "member_id", "role", "position")


def _endpoints_of(session: Any) -> list[str] | None:
    """The endpoints a vastdb Session talks to (None for anything that has none)."""
    endpoints = getattr(getattr(session, "api", None), "endpoints", None)
    return [str(url) for url in endpoints] if endpoints else None


def _has_sorted_tables(session: Any) -> bool:
    """Sorted (Elysium) tables need VAST 5.3+; the SDK's feature gate says whether the cluster has them."""
    try:
        session.features.check_elysium()
    except vast_errors.NotSupportedVersion:
        return False
    return True


def _migrate(table: Any, spec: TableSpec) -> None:
    """Add the columns a stored table lacks; refuse a column whose type changed (that needs a real migration)."""
    stored = table.arrow_schema
    for column in spec.schema:
        if column.name in stored.names and not stored.field(column.name).type.equals(column.type):
            raise VastSchemaError(f"{spec.name}.{column.name} is {stored.field(column.name).type}, "
                                  f"expected {column.type}")
    missing = [column for column in spec.schema if column.name not in stored.names]
    if missing:
        table.add_column(pa.schema(missing))


def _collectors(tx: _Tx, flow_ids: Collection[str]) -> dict[str, set[str]]:
    """Which collections list each flow (its `collected_by`)."""
    found: dict[str, set[str]] = {}
    for r in tx.rows_in("flow_members", ["collection_id", "member_id"], "member_id", flow_ids):
        found.setdefault(r["member_id"], set()).add(r["collection_id"])
    return found


def _checked_members(tx: _Tx, flow_id: str, items: list[dict[str, Any]]) -> list[Row]:
    """The membership rows of a flow's collection; every member must be a stored flow (a later
    duplicate of a member replaces the earlier one)."""
    ids = [item["id"] for item in items]
    known = {r["id"] for r in tx.rows_in("flows", ["id"], "id", ids)}
    missing = [i for i in ids if i not in known and i != flow_id]
    if missing or flow_id in ids:
        reason = "a flow cannot collect itself" if flow_id in ids else f"no such flows: {', '.join(missing[:5])}"
        raise Conflict(f"flow_collection of {flow_id}: {reason}")
    rows = {item["id"]: {"collection_id": flow_id, "member_id": item["id"], "role": item.get("role"), "position": i}
            for i, item in enumerate(items)}
    return list(rows.values())


def _flows_of_sources(tx: _Tx, source_ids: Collection[str]) -> set[str]:
    return {r["id"] for r in tx.rows_in("flows", ["id"], "source_id", source_ids)}


def _member_rows(tx: _Tx, column: str, flow_ids: Collection[str]) -> list[Row]:
    return tx.rows_in("flow_members", MEMBER_COLUMNS, column, flow_ids)


def _source_links(tx: _Tx, member_rows: list[Row]) -> list[tuple[str, str, str | None]]:
    """(collecting source, member source, role) for membership rows whose two flows both exist, ordered
    by member then collection flow id (the order SQLite's plan reads them in, so the same role wins when
    several flow pairs link two sources; the contract leaves that choice open)."""
    ends = {r["collection_id"] for r in member_rows} | {r["member_id"] for r in member_rows}
    source_of = {r["id"]: r["source_id"] for r in tx.rows_in("flows", ["id", "source_id"], "id", ends)}
    ordered = sorted(member_rows, key=lambda r: (r["member_id"], r["collection_id"]))
    return [(source_of[r["collection_id"]], source_of[r["member_id"]], r["role"]) for r in ordered
            if r["collection_id"] in source_of and r["member_id"] in source_of]


def _source_records(tx: _Tx, rows: list[Row]) -> list[SourceRecord]:
    """Source records with their collections inferred from their flows' collections."""
    flows = _flows_of_sources(tx, [r["id"] for r in rows])
    member_rows = {(r["collection_id"], r["member_id"]): r
                   for r in _member_rows(tx, "collection_id", flows) + _member_rows(tx, "member_id", flows)}
    members: dict[str, dict[str, str | None]] = {}
    collectors: dict[str, set[str]] = {}
    for collector, member, role in _source_links(tx, list(member_rows.values())):
        members.setdefault(collector, {}).setdefault(member, role)
        collectors.setdefault(member, set()).add(collector)
    return [SourceRecord(
        _loads(r["doc"]), r["created_ns"], r["updated_ns"],
        source_collection=tuple({"id": m, **({"role": role} if role else {})}
                                for m, role in sorted(members.get(r["id"], {}).items())),
        collected_by=tuple(sorted(collectors.get(r["id"], ()))),
    ) for r in rows]


def _collected(allowed: set[str] | None, excluded: set[str], members: set[str], *,
               by_any: bool) -> tuple[set[str] | None, set[str]]:
    """Narrow a listing to `members` (collected by one of the given ids) or, for `collected_by_ids=()`,
    exclude every member of any collection."""
    if by_any:
        return (members if allowed is None else allowed & members), excluded
    return allowed, excluded | members


def _tagged(tx: _Tx, kind: str, tags: TagFilter) -> tuple[set[str] | None, set[str]]:
    """Entities a tag filter allows (None: no restriction) and excludes, from the `tags` table."""
    allowed: set[str] | None = None
    excluded: set[str] = set()
    of_kind = _.entity_kind == kind
    for name, values in tags.values.items():
        ids = {r["entity_id"] for r in tx.rows_in("tags", ["entity_id"], "value", values, of_kind & (_.name == name))}
        allowed = ids if allowed is None else allowed & ids
    for name, present in tags.exists.items():
        ids = {r["entity_id"] for r in tx.rows("tags", ["entity_id"], of_kind & (_.name == name))}
        if present:
            allowed = ids if allowed is None else allowed & ids
        else:
            excluded |= ids
    return allowed, excluded


@dataclass
class _TagDiff:
    """The `tags` rows to delete and insert so they match a document (nothing when they match already)."""

    stale: list[Row]
    new: list[Row]

    @classmethod
    def read(cls, tx: _Tx, kind: str, entity_id: str, doc: dict[str, Any],
             previous: list[dict[str, Any]]) -> _TagDiff:
        """Only the tag names the stored and new documents have are read, by (kind, name): the sort key."""
        wanted = tag_pairs(doc)
        names = {n for n, _v in wanted} | {n for old in previous for n, _v in tag_pairs(old)}
        stored = tx.rows_in("tags", ["name", "value"], "name", names,
                            (_.entity_kind == kind) & (_.entity_id == entity_id), row_ids=True)
        kept: set[tuple[str, str | None]] = set()
        stale = []
        for r in stored:
            pair = (r["name"], r["value"])
            if pair in wanted and pair not in kept:
                kept.add(pair)
            else:
                stale.append(r)
        new = [{"entity_kind": kind, "entity_id": entity_id, "name": n, "value": v} for n, v in sorted(
            wanted - kept, key=lambda p: (p[0], p[1] or ""))]
        return cls(stale, new)

    def write(self, tx: _Tx) -> None:
        tx.delete("tags", self.stale)
        tx.insert("tags", self.new)


def _listing(tx: _Tx, table: str, columns: Sequence[str], listing: Listing, updated_column: str,
             where: Predicate | None, allowed: set[str] | None, excluded: set[str], limit: int,
             doc_filter: Callable[[Row], bool] | None) -> list[Row]:
    """One keyset page of flows or sources: the narrow sort columns of every candidate are read with the
    pushable filters, sorted here by `sort_key`, then whole rows are read in that order until the page is full."""
    if (allowed is not None and not allowed) or limit <= 0:
        return []
    where = all_of(where, keyset_predicate(listing, updated_column))
    if allowed is not None and len(allowed) <= ISIN_CHUNK:
        where = all_of(where, *isin_chunks("id", allowed))
    narrow = newest(tx.rows(table, ["id", "created_ns", updated_column, "label"], where), "id", updated_column)
    after = None if listing.after is None else _comparable(listing.after)
    keyed = []
    for item_id, r in narrow.items():
        if (allowed is not None and item_id not in allowed) or item_id in excluded:
            continue
        key = _comparable(sort_key(listing.sort_by, item_id, r["created_ns"], r[updated_column], r["label"]))
        if after is None or (key < after if listing.reverse else key > after):
            keyed.append((key, item_id))
    ordered = [item_id for _key, item_id in sorted(keyed, reverse=listing.reverse)]
    page: list[Row] = []
    step = max(limit, 100)
    for i in range(0, len(ordered), step):
        chunk = ordered[i:i + step]
        full = newest(tx.rows_in(table, columns, "id", chunk), "id", updated_column)
        page += [full[item_id] for item_id in chunk
                 if item_id in full and (doc_filter is None or doc_filter(full[item_id]))]
        if len(page) >= limit:
            break
    return page[:limit]


def _objects(tx: _Tx, object_ids: Collection[str]) -> dict[str, ObjectRecord]:
    rows = newest(tx.rows_in("objects", OBJECT_COLUMNS, "id", object_ids), "id", "registered", "created_ns")
    return {object_id: _object_record(r) for object_id, r in rows.items()}


def _init_objects(tx: _Tx, object_ids: Collection[str], *, other_than_flow: str | None = None) -> set[str]:
    """Which of these objects some segment (of a flow other than `other_than_flow`) uses as its init object."""
    rows = tx.rows_in("object_uses", ["object_id", "flow_id", "segments"], "object_id", object_ids, _.role == INIT)
    return {r["object_id"] for r in rows if r["segments"] > 0 and r["flow_id"] != other_than_flow}


def _unused_allocations(tx: _Tx, where: Predicate, limit: int) -> list[Row]:
    """At most about `limit` allocations passing `where` that no segment uses as init object (init objects
    are never registered). `limit_rows` keeps arbitrary rows, so a read whose rows were partly in use is
    repeated with a limit raised by that many, until enough are left or all were read."""
    cap = limit
    while True:
        rows = tx.rows("objects", OBJECT_COLUMNS, all_of(eq("registered", False), where), limit=cap)
        in_use = _init_objects(tx, {r["id"] for r in rows})
        unused = [r for r in rows if r["id"] not in in_use]
        if len(rows) < cap or len(unused) >= limit:
            return unused
        cap = limit + len(rows) - len(unused)


def _object_rows(tx: _Tx, object_id: str) -> list[Row]:
    """Every stored row of one object (duplicates included, newest first), for an update; raises NotFound."""
    rows = tx.rows("objects", ["id", "storage_id", "copies", "registered", "created_ns"], _.id == object_id,
                   row_ids=True)
    if not rows:
        raise NotFound(f"object {object_id} does not exist")
    return sorted(rows, key=lambda r: _row_rank(r, ("registered", "created_ns")), reverse=True)


# -- segment reads ---------------------------------------------------------------------------------------------


def _segment_page(tx: _Tx, flow: Row, query: SegmentQuery, want: int) -> list[Row]:
    """The first `want` segments of a query in its order, reading start_ns windows of the flow."""
    if flow["tr_start_ns"] is None or want <= 0:
        return []
    extent = (flow["tr_start_ns"], flow["tr_end_ns"])
    lo = max(extent[0], query.start_ns - flow["max_segment_ns"] if query.start_ns > _UNBOUNDED_BELOW else INT64_MIN)
    hi = min(extent[1], query.end_ns)
    if query.after_start_ns is not None:
        lo, hi = (lo, min(hi, query.after_start_ns)) if query.reverse else (max(lo, query.after_start_ns + 1), hi)

    def fetch(a: int, b: int, cap: int | None) -> tuple[pa.Table, bool]:
        part = tx.scan("segments", SEGMENT_COLUMNS, segment_window(query.flow_id, a, b, ends_after=query.start_ns,
                                                                   object_id=query.object_id), limit=cap)
        return part, cap is not None and part.num_rows >= cap

    return read_ordered(fetch, lo=lo, hi=hi, want=want, width=window_width(extent, flow["segment_count"], want),
                        reverse=query.reverse)


def _nearby(tx: _Tx, flow: FlowRecord, window: tuple[int, int] | None) -> list[StoredSegment]:
    """Every stored segment of the flow overlapping the window, in any order (one select)."""
    if window is None or flow.extent is None:
        return []
    start, end = window
    lo = max(flow.extent[0], start - flow.max_segment_ns if start > _UNBOUNDED_BELOW else INT64_MIN)
    hi = min(flow.extent[1], end)
    if lo >= hi:
        return []
    return [_segment(r) for r in tx.rows("segments", SEGMENT_COLUMNS, segment_window(flow.id, lo, hi,
                                                                                     ends_after=start))]


def _stats_after_delete(tx: _Tx, flow_id: str, flow: Row, deleted: list[Row]) -> Row:
    """The flow's extent and count once `deleted` are gone, read before they go (so nothing relies on a
    transaction seeing its own deletes): only a deleted first or last segment costs a probe."""
    gone = {r[ROW_ID] for r in deleted}
    start, end = flow["tr_start_ns"], flow["tr_end_ns"]
    count = flow["segment_count"] - len(deleted)

    def fetch(a: int, b: int, cap: int | None) -> tuple[pa.Table, bool]:
        part = tx.scan("segments", ["start_ns", "end_ns"], segment_window(flow_id, a, b), row_ids=True, limit=cap)
        keep = [r[ROW_ID] not in gone for r in part.select([ROW_ID]).to_pylist()]
        return part.filter(pa.array(keep, pa.bool_())), cap is not None and part.num_rows >= cap

    width = window_width((start, end), flow["segment_count"], 1)
    if min(r["start_ns"] for r in deleted) <= start:
        first = read_ordered(fetch, lo=start, hi=end, want=1, width=width)
        if not first:
            return {"tr_start_ns": None, "tr_end_ns": None, "segment_count": 0}
        start = first[0]["start_ns"]
    if max(r["end_ns"] for r in deleted) >= end:
        last = read_ordered(fetch, lo=start, hi=end, want=1, width=width, reverse=True)[0]["start_ns"]
        tail = fetch(max(start, last - flow["max_segment_ns"]), last + 1, None)[0]
        end = max(tail["end_ns"].to_pylist())
    return {"tr_start_ns": start, "tr_end_ns": end, "segment_count": max(count, 0)}


class _Unreference:
    """Takes segments being deleted off the flow's `object_uses`, and finds the objects nothing uses any
    more (as media or init object, in any flow): their records, instances and use rows are dropped."""

    def __init__(self, tx: _Tx, flow_id: str, segments: list[Row], *, whole_flow: bool) -> None:
        removed = _segment_uses([(s["object_id"], s["init_object_id"]) for s in segments])
        candidates = {object_id for object_id, _role in removed}
        uses = tx.rows_in("object_uses", ["object_id", "flow_id", "role", "segments"], "object_id", candidates,
                          row_ids=True)
        own = [u for u in uses if u["flow_id"] == flow_id]
        others = {u["object_id"] for u in uses if u["flow_id"] != flow_id and u["segments"] > 0}
        self.stale, self.changed, kept = (own, [], set()) if whole_flow else _fold_uses(own, removed)
        self.gone = sorted(candidates - others - kept)
        dropped = {id(u) for u in self.stale}
        self.stale += [u for u in uses if u["object_id"] in self.gone and id(u) not in dropped]
        self.record_rows = tx.rows_in("objects", OBJECT_COLUMNS, "id", self.gone, row_ids=True)
        self.instances = tx.rows_in("object_instances", ["object_id"], "object_id", self.gone, row_ids=True)

    def write(self, tx: _Tx) -> list[ObjectRecord]:
        tx.delete("object_uses", self.stale)
        tx.update("object_uses", self.changed, ["segments"])
        tx.delete("objects", self.record_rows)
        tx.delete("object_instances", self.instances)
        records = newest(self.record_rows, "id", "registered", "created_ns")
        return [_object_record(records[o]) for o in self.gone if o in records]


def _segment_uses(objects: Sequence[tuple[str, str | None]]) -> Counter[tuple[str, str]]:
    """How many segments, given as (object_id, init_object_id), use each object, per role."""
    media = ((object_id, MEDIA) for object_id, _init in objects)
    inits = ((init, INIT) for _object_id, init in objects if init is not None)
    return Counter(itertools.chain(media, inits))


def _fold_uses(own: list[Row], removed: Counter[tuple[str, str]]) -> tuple[list[Row], list[Row], set[str]]:
    """The flow's use rows once `removed` uses are gone: rows to delete, rows to update (duplicates fold
    into the first), and the objects the flow still uses."""
    stale: list[Row] = []
    changed: list[Row] = []
    kept = {u["object_id"] for u in own if (u["object_id"], u["role"]) not in removed and u["segments"] > 0}
    for (object_id, role), count in removed.items():
        rows = [u for u in own if u["object_id"] == object_id and u["role"] == role]
        left = sum(u["segments"] for u in rows) - count
        if left > 0:
            changed.append({**rows[0], "segments": left})
            stale += rows[1:]
            kept.add(object_id)
        else:
            stale += rows
    return stale, changed, kept


class _Commit:
    """A batch of segment commits for many flows, applied in one transaction: reads first, then writes."""

    def __init__(self, commits: Sequence[SegmentCommit]) -> None:
        self.commits = commits

    def apply(self, tx: _Tx) -> None:
        flow_ids = {c.flow_id for c in self.commits}
        flows = tx.rows_in("flows", FLOW_STATS, "id", flow_ids, row_ids=True)
        stats = self._flow_stats(flows)
        objects = self._registrations(tx)
        uses = self._uses(tx, flow_ids)
        events = self._events(tx, flow_ids)
        tx.insert("segments", [{"flow_id": c.flow_id, "start_ns": s.start_ns, "end_ns": s.end_ns,
                                "object_id": s.object_id, "init_object_id": s.init_object_id,
                                "object_timerange": s.object_timerange, "doc": s.doc.decode()}
                               for c in self.commits for s in c.segments])
        changed = [{**r, **stats[r["id"]]} for r in flows if r["id"] in stats]
        tx.update("flows", changed, ["tr_start_ns", "tr_end_ns", "max_segment_ns", "segment_count",
                                     "segments_updated_ns"])
        objects.write(tx)
        uses.write(tx)
        tx.insert("applied_events", events)

    def _flow_stats(self, flows: list[Row]) -> dict[str, Row]:
        """Each stored flow's stats after its commits, in order (a flow missing from the store gets none)."""
        current = {flow_id: dict(r) for flow_id, r in newest(flows, "id", "metadata_updated_ns").items()}
        changed: dict[str, Row] = {}
        for c in self.commits:
            stats = current.get(c.flow_id)
            if stats is None or not c.segments:
                continue
            start, end = min(s.start_ns for s in c.segments), max(s.end_ns for s in c.segments)
            longest = max(s.end_ns - s.start_ns for s in c.segments)
            stats.update(
                tr_start_ns=start if stats["tr_start_ns"] is None else min(stats["tr_start_ns"], start),
                tr_end_ns=end if stats["tr_end_ns"] is None else max(stats["tr_end_ns"], end),
                max_segment_ns=max(stats["max_segment_ns"] or 0, longest),
                segment_count=(stats["segment_count"] or 0) + len(c.segments), segments_updated_ns=c.now_ns)
            changed[c.flow_id] = {k: stats[k] for k in ("tr_start_ns", "tr_end_ns", "max_segment_ns", "segment_count",
                                                         "segments_updated_ns")}
        return changed

    def _registrations(self, tx: _Tx) -> _Writes:
        """First uses of objects: new records, or allocations becoming registered (a registered one stays).

        Raises Conflict when a media object the segments name is neither stored nor registered here: a
        delete in another flow's agent dropped it since the batch was planned (the caller plans again)."""
        registrations = [o for c in self.commits for o in c.objects]
        media = {s.object_id for c in self.commits for s in c.segments}
        stored = tx.rows_in("objects", ["id", "registered", "size", "checksum"], "id",
                            media | {o.object_id for o in registrations}, row_ids=True)
        by_id: dict[str, list[Row]] = {}
        for r in stored:
            by_id.setdefault(r["id"], []).append(r)
        vanished = sorted(media - set(by_id) - {o.object_id for o in registrations})
        if vanished:
            raise Conflict(f"objects dropped while the segments using them were being written: "
                           f"{', '.join(vanished[:5])}")
        writes = _Writes("objects", ["registered", "timerange", "key_frame_count", "init_object_id",
                                     "first_referenced_by_flow", "size", "checksum"])
        done: set[str] = set()
        for o in registrations:
            rows = by_id.get(o.object_id, [])
            if o.object_id in done or any(r["registered"] for r in rows):
                continue
            done.add(o.object_id)
            values = {"registered": True, "timerange": o.timerange, "key_frame_count": o.key_frame_count,
                      "init_object_id": o.init_object_id, "first_referenced_by_flow": o.flow_id}
            if rows:
                writes.updates += [{**r, **values, "size": o.size if o.size is not None else r["size"],
                                    "checksum": o.checksum if o.checksum is not None else r["checksum"]} for r in rows]
            else:
                writes.inserts.append({**values, "id": o.object_id, "storage_id": o.storage_id,
                                       "allocated_by_flow": o.flow_id, "content_type": o.content_type,
                                       "created_ns": o.created_ns, "size": o.size, "checksum": o.checksum,
                                       "copies": "[]"})
        return writes

    def _uses(self, tx: _Tx, flow_ids: set[str]) -> _Writes:
        """Add the new segments to the per-flow object use counts."""
        added: Counter[tuple[str, str, str]] = Counter()
        for c in self.commits:
            for (object_id, role), n in _segment_uses([(s.object_id, s.init_object_id) for s in c.segments]).items():
                added[(object_id, c.flow_id, role)] += n
        stored = tx.rows_in("object_uses", ["object_id", "flow_id", "role", "segments"], "object_id",
                            {key[0] for key in added}, all_of(*isin_chunks("flow_id", flow_ids))
                            if len(flow_ids) <= ISIN_CHUNK else None, row_ids=True)
        by_key: dict[tuple[str, str, str], list[Row]] = {}
        for r in stored:
            by_key.setdefault((r["object_id"], r["flow_id"], r["role"]), []).append(r)
        writes = _Writes("object_uses", ["segments"])
        for key, count in added.items():
            rows = by_key.get(key, [])
            if rows:  # duplicates fold into the first row
                writes.updates.append({**rows[0], "segments": sum(r["segments"] for r in rows) + count})
                writes.deletes += rows[1:]
            else:
                writes.inserts.append({"object_id": key[0], "flow_id": key[1], "role": key[2], "segments": count})
        return writes

    def _events(self, tx: _Tx, flow_ids: set[str]) -> list[Row]:
        """The event ids not recorded yet (redelivered ones are recorded once)."""
        wanted = {(c.flow_id, e): c.now_ns for c in self.commits for e in c.event_ids}
        stored = tx.rows_in("applied_events", ["flow_id", "event_id"], "event_id", {e for _f, e in wanted},
                            all_of(*isin_chunks("flow_id", flow_ids)) if len(flow_ids) <= ISIN_CHUNK else None)
        for r in stored:
            wanted.pop((r["flow_id"], r["event_id"]), None)
        return [{"flow_id": f, "event_id": e, "applied_ns": now} for (f, e), now in wanted.items()]


@dataclass
class _Writes:
    """Row writes to one table decided during the read phase."""

    table: str
    columns: list[str]
    inserts: list[Row] = field(default_factory=list)
    updates: list[Row] = field(default_factory=list)
    deletes: list[Row] = field(default_factory=list)

    def write(self, tx: _Tx) -> None:
        tx.delete(self.table, self.deletes)
        tx.update(self.table, self.updates, self.columns)
        tx.insert(self.table, self.inserts)
