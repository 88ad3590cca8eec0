"""An honest in-process stand-in for the vastdb 2.1 SDK object graph (issue 5: "Testing VAST honestly").

No VAST cluster runs here, and the wire protocol is not worth faking, so this module fakes the SDK
*objects* a metadata adapter uses: ``Session.transaction()``, ``Transaction.bucket()`` /
``table_from_metadata()``, ``Bucket``, ``Schema`` and ``Table``, with the SDK's signatures, return types and
error classes. It reuses the SDK's client-side code wherever that code decides behaviour:

- ``TableMetadata`` (table type, sorted columns, stats, the ibis table) is the SDK's own class; the two
  RPCs it makes (``list_all_columns``, ``get_table_stats``) are answered by ``_StandinApi``.
- Inserts go through the SDK's ``_by_column_inserter.Inserter`` (row-id type, empty batches, wide rows).
- Every select first builds the real QueryData request with ``vastdb._internal.build_query_data_request``,
  so exactly the predicates the SDK/server reject raise the same exception, and the response schema is
  the SDK's. Only then is the predicate evaluated here with ``pyarrow.compute``.

Server behaviour that no public material pins down is marked ``ASSUMPTION`` below; each time the
stricter choice was taken. Private SDK APIs used here are pinned to vastdb 2.1.x by tests/test_vast_standin.py.
"""

from __future__ import annotations

import inspect
import itertools
import random
import threading
from collections.abc import Iterator
from copy import deepcopy
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Optional, Union

import ibis
import ibis.expr.operations as ops
import pyarrow as pa
import pyarrow.compute as pc
import vastdb.session
from requests.structures import CaseInsensitiveDict
from vastdb import _by_column_inserter, _internal, errors, util
from vastdb._ibis_support import validate_ibis_support_schema
from vastdb.config import QueryConfig
from vastdb.features import Features
from vastdb.table_metadata import TableMetadata, TableRef, TableType
from vastdb.transaction import TransactionNotActiveError

INTERNAL_ROW_ID = _internal.INTERNAL_ROW_ID
_CATALOG = "catalog"  # namespace of schemas and table definitions; rows live in one namespace per table id
_ROW_ID_HIGH_BITS = 0x81 << 56  # ASSUMPTION: sorted-table row ids use high bits (the SDK's tests mask 56 bits)


def _http_error(cls: type[errors.HttpError], status: int, code: str, message: str, url: str) -> errors.HttpError:
    return cls(code=code, message=message, method="STANDIN", url=url, status=status, headers=CaseInsensitiveDict())


def _bad_request(message: str, url: str) -> errors.HttpError:
    return _http_error(errors.BadRequest, 400, "InvalidArgument", message, url)


@dataclass(frozen=True)
class _TableDef:
    """A committed table definition; rows are keyed by ``table_id`` so a re-created table starts empty."""

    table_id: int
    arrow_schema: pa.Schema
    sorting_key: tuple[str, ...]

    @property
    def row_id_type(self) -> pa.DataType:
        field = _internal.INTERNAL_ROW_ID_SORTED_FIELD if self.sorting_key else _internal.INTERNAL_ROW_ID_FIELD
        return field.type


class VastStandin:
    """The in-memory "cluster": buckets -> schemas -> tables, multi-versioned, shared by all sessions.

    Isolation model (ASSUMPTION, the SDK documents none): snapshot isolation. A transaction reads the state
    committed when it began plus its own writes; writes are applied row by row at commit. Writing a row (or
    catalog entry) that another open transaction wrote, or that was committed after this transaction began,
    raises ``errors.Conflict`` at once (first writer wins, no waiting), like the SDK's own DDL conflict test.
    """

    def __init__(self, buckets: tuple[str, ...] = ("tams",), *, seed: int = 0,
                 vast_version: tuple[int, ...] = (5, 4, 0, 0)) -> None:
        self.buckets = frozenset(buckets)
        self.vast_version = vast_version
        self._lock = threading.RLock()
        self._rng = random.Random(seed)  # one seeded RNG per cluster: row order and batch sizes reproduce
        self._seq = 0  # last commit sequence number
        self._data: dict[Any, dict[Any, list[tuple[int, Any]]]] = {}  # namespace -> key -> [(seq, value|None)]
        self._locks: dict[tuple[Any, Any], int] = {}  # (namespace, key) -> txid of the open writer
        self._active: dict[int, StandinTransaction] = {}
        self._txids = itertools.count(1)
        self._table_ids = itertools.count(1)
        self._row_ids: dict[int, itertools.count] = {}

    def connect(self, *args: Any, **kwargs: Any) -> StandinSession:
        """A session factory with ``vastdb.connect``'s signature; arguments are checked, then ignored."""
        inspect.signature(vastdb.session.Session).bind(*args, **kwargs)
        return StandinSession(self)

    # -- multi-version storage (all under self._lock) ------------------------------------------------------
    def _begin(self, tx: StandinTransaction) -> tuple[int, int]:
        with self._lock:
            txid = next(self._txids)
            self._active[txid] = tx
            return txid, self._seq

    def _end(self, tx: StandinTransaction, txid: int, commit: bool) -> None:
        with self._lock:
            del self._active[txid]
            self._locks = {k: v for k, v in self._locks.items() if v != txid}
            if not commit:
                return
            self._seq += 1
            horizon = min((t._snapshot for t in self._active.values()), default=self._seq)
            for namespace, writes in tx._pending.items():
                chains = self._data.setdefault(namespace, {})
                for key, value in writes.items():
                    chain = chains.setdefault(key, [])
                    chain.append((self._seq, value))
                    # drop versions no open snapshot can see any more
                    while len(chain) > 1 and chain[1][0] <= horizon:
                        chain.pop(0)
                    if len(chain) == 1 and chain[0][1] is None and chain[0][0] <= horizon:
                        del chains[key]  # deleted, and every open snapshot already sees it deleted

    def _rows_of(self, tx: StandinTransaction, namespace: Any) -> dict[Any, Any]:
        tx.active_txid  # raises TransactionNotActiveError, as the SDK does for calls outside the `with`
        with self._lock:
            visible = {}
            for key, chain in self._data.get(namespace, {}).items():
                value = _visible(chain, tx._snapshot)
                if value is not None:
                    visible[key] = value
            for key, value in tx._pending.get(namespace, {}).items():
                if value is None:
                    visible.pop(key, None)
                else:
                    visible[key] = value
            return visible

    def _get(self, tx: StandinTransaction, namespace: Any, key: Any) -> Any:
        tx.active_txid
        with self._lock:
            pending = tx._pending.get(namespace, {})
            if key in pending:
                return pending[key]
            return _visible(self._data.get(namespace, {}).get(key, []), tx._snapshot)

    def _put(self, tx: StandinTransaction, namespace: Any, key: Any, value: Any, url: str) -> None:
        txid = tx.active_txid
        with self._lock:
            holder = self._locks.get((namespace, key))
            chain = self._data.get(namespace, {}).get(key)
            if (holder is not None and holder != txid) or (chain and chain[-1][0] > tx._snapshot):
                raise _http_error(errors.Conflict, 409, "Conflict", f"{key!r} was changed by another transaction", url)
            self._locks[(namespace, key)] = txid
            tx._pending.setdefault(namespace, {})[key] = value

    def _allocate_row_ids(self, table: _TableDef, count: int) -> list[int]:
        with self._lock:
            counter = self._row_ids.setdefault(table.table_id, itertools.count())
            ids = [next(counter) for _ in range(count)]
        return [_ROW_ID_HIGH_BITS | i for i in ids] if table.sorting_key else ids


def _visible(chain: list[tuple[int, Any]], snapshot: int) -> Any:
    for seq, value in reversed(chain):
        if seq <= snapshot:
            return value
    return None


class StandinSession:
    """Mirrors ``vastdb.session.Session``: ``transaction()``, plus ``api`` and ``features`` that the SDK's
    ``TableMetadata.load(tx)`` / ``load_stats(tx)`` reach through ``tx._rpc``."""

    def __init__(self, cluster: VastStandin) -> None:
        self._cluster = cluster
        self.api = _StandinApi(cluster)
        self.features = Features(cluster.vast_version)

    def transaction(self) -> StandinTransaction:
        """A non-initialized transaction, to be used as ``with session.transaction() as tx:``."""
        return StandinTransaction(self)


class _StandinApi:
    """The two metadata RPCs of ``vastdb._internal.VastdbApi`` that the SDK's TableMetadata calls."""

    def __init__(self, cluster: VastStandin) -> None:
        self._cluster = cluster

    def _table(self, bucket: str, schema: str, table: str, txid: Optional[int]) -> _TableDef:
        tx = self._cluster._active.get(txid)  # type: ignore[arg-type]
        if tx is None:
            raise errors.MissingTransaction()
        return tx._table_def(TableRef(bucket, schema, table))

    def list_all_columns(self, bucket: str, schema: str, table: str, *, sorted_columns: bool, txid: int = 0,
                         list_imports_table: bool = False, **_: Any) -> pa.Schema:
        tdef = self._table(bucket, schema, table, txid)
        if sorted_columns:
            if not tdef.sorting_key:
                raise _bad_request("Listing sorted columns without elysium enabled", f"{bucket}/{schema}/{table}")
            return pa.schema([tdef.arrow_schema.field(name) for name in tdef.sorting_key], metadata={})
        fields = list(tdef.arrow_schema)
        if self._cluster.vast_version >= (5, 5):
            # 5.5+ marks sorted columns in the column metadata. The SDK calls f.metadata.get() on every
            # column, so every column must carry metadata; ASSUMPTION: unsorted ones say b"Unsorted".
            sort_type, sort_index = _internal.COLUMN_METADATA_SORT_TYPE_PROPERTY, _internal.COLUMN_METADATA_SORT_INDEX_PROPERTY
            fields = [f.with_metadata({sort_type: _internal.COLUMN_METADATA_SORTED,
                                       sort_index: str(tdef.sorting_key.index(f.name)).encode()})
                      if f.name in tdef.sorting_key else f.with_metadata({sort_type: b"Unsorted"}) for f in fields]
        return pa.schema(fields, metadata={})

    def get_table_stats(self, bucket: str, schema: str, name: str, txid: int = 0, client_tags: Any = (),
                        expected_retvals: Any = (), imports_table_stats: bool = False) -> _internal.TableStats:
        tdef = self._table(bucket, schema, name, txid)
        rows = self._cluster._rows_of(self._cluster._active[txid], tdef.table_id)
        return _internal.TableStats(num_rows=len(rows), size_in_bytes=0, sorting_score=0, write_amplification=0,
                                    acummulative_row_inserition_count=len(rows), vips=[],
                                    sorting_key_enabled=bool(tdef.sorting_key))


class StandinTransaction:
    """Mirrors ``vastdb.transaction.Transaction``: commit on a clean ``with`` exit, rollback on an exception."""

    def __init__(self, session: StandinSession) -> None:
        self._rpc = session  # the SDK's attribute name: TableMetadata.load(tx) uses tx._rpc.api / .features
        self._cluster = session._cluster
        self.txid: Optional[int] = None
        self._snapshot = 0
        self._pending: dict[Any, dict[Any, Any]] = {}

    def __enter__(self) -> StandinTransaction:
        self.txid, self._snapshot = self._cluster._begin(self)
        return self

    def __exit__(self, exc_type: Any, exc_value: Any, exc_traceback: Any) -> None:
        txid, self.txid = self.txid, None
        self._cluster._end(self, txid, commit=exc_type is None)  # type: ignore[arg-type]

    @property
    def is_active(self) -> bool:
        return self.txid is not None

    @property
    def active_txid(self) -> int:
        if self.txid is None:
            raise TransactionNotActiveError()
        return self.txid

    def bucket(self, name: str) -> StandinBucket:
        if name not in self._cluster.buckets:
            raise errors.MissingBucket(name)
        return StandinBucket(name, self)

    def table_from_metadata(self, metadata: TableMetadata) -> StandinTableInTransaction:
        """Like the SDK: no RPC here; select needs ``table_type`` and stats (or ``num_splits``) later."""
        return StandinTableInTransaction(deepcopy(metadata), self)

    def _table_def(self, ref: TableRef) -> _TableDef:
        tdef = self._cluster._get(self, _CATALOG, ("table", ref.bucket, ref.schema, ref.table))
        if tdef is None:
            raise _http_error(errors.NotFound, 404, "NoSuchTable", "table not found", ref.full_path)
        return tdef


@dataclass
class StandinBucket:
    """Mirrors ``vastdb.bucket.Bucket`` (no nested schemas, snapshots or catalog)."""

    name: str
    tx: StandinTransaction

    def create_schema(self, name: str, fail_if_exists: bool = True) -> StandinSchema:
        if current := self.schema(name, fail_if_missing=False):
            if fail_if_exists:
                raise errors.SchemaExists(self.name, name)
            return current
        self.tx._cluster._put(self.tx, _CATALOG, ("schema", self.name, name), True, f"{self.name}/{name}")
        return StandinSchema(name, self)

    def schema(self, name: str, fail_if_missing: bool = True) -> Optional[StandinSchema]:
        if self.tx._cluster._get(self.tx, _CATALOG, ("schema", self.name, name)) is None:
            if fail_if_missing:
                raise errors.MissingSchema(self.name, name)
            return None
        return StandinSchema(name, self)

    def schemas(self, batch_size: Optional[int] = None) -> list[StandinSchema]:
        keys = self.tx._cluster._rows_of(self.tx, _CATALOG)
        return [StandinSchema(k[2], self) for k in sorted(keys) if k[0] == "schema" and k[1] == self.name]


@dataclass
class StandinSchema:
    """Mirrors ``vastdb.schema.Schema``."""

    name: str
    bucket: StandinBucket

    @property
    def tx(self) -> StandinTransaction:
        return self.bucket.tx

    def create_table(self, table_name: str, columns: pa.Schema, fail_if_exists: bool = True,
                     use_external_row_ids_allocation: bool = False, sorting_key: _internal.SortingKey = [],
                     vector_index: Optional[_internal.VectorIndexSpec] = None,
                     partition_spec: Optional[Any] = None) -> StandinTable:
        if current := self.table(table_name, fail_if_missing=False):
            if fail_if_exists:
                raise errors.TableExists(self.bucket.name, self.name, table_name)
            return current
        if use_external_row_ids_allocation or vector_index is not None or partition_spec is not None:
            raise NotImplementedError("the stand-in models plain and sorted (Elysium) tables only")
        validate_ibis_support_schema(columns)  # client-side, as in the SDK
        _check_server_types(columns)
        if len(columns) != len(set(columns)):
            raise ValueError(f"Arrow schema contains duplicate field names: {columns.names}")
        if sorting_key and isinstance(sorting_key[0], str):  # the SDK maps names to indices client-side
            sorting_key = _internal.VastdbApi._convert_column_names_to_indices(columns, list(sorting_key))
        ref = TableRef(self.bucket.name, self.name, table_name)
        if any(not 0 <= i < len(columns) for i in sorting_key):
            raise _bad_request(f"invalid sorting key {sorting_key}", ref.full_path)
        tdef = _TableDef(next(self.tx._cluster._table_ids), pa.schema(list(columns)),
                         tuple(columns.field(i).name for i in sorting_key))
        self.tx._cluster._put(self.tx, _CATALOG, ("table", ref.bucket, ref.schema, ref.table), tdef, ref.full_path)
        return self.table(table_name)  # type: ignore[return-value]

    def table(self, name: str, fail_if_missing: bool = True) -> Optional[StandinTable]:
        if self.tx._cluster._get(self.tx, _CATALOG, ("table", self.bucket.name, self.name, name)) is None:
            if fail_if_missing:
                raise errors.MissingTable(self.bucket.name, self.name, name)
            return None
        return StandinTable(TableMetadata(TableRef(self.bucket.name, self.name, name)), 0, self.tx)

    def tables(self, table_name: str = "", page_size: int = 1000) -> list[StandinTable]:
        if table_name:
            return [t] if (t := self.table(table_name, fail_if_missing=False)) else []
        return [self.table(name) for name in self.tablenames()]  # type: ignore[misc]

    def tablenames(self, page_size: int = 1000) -> list[str]:
        keys = self.tx._cluster._rows_of(self.tx, _CATALOG)
        return sorted(k[3] for k in keys if k[:3] == ("table", self.bucket.name, self.name))

    def drop(self) -> None:
        if self.tablenames():
            raise _http_error(errors.Conflict, 409, "Conflict", "schema is not empty", f"{self.bucket.name}/{self.name}")
        self.tx._cluster._put(self.tx, _CATALOG, ("schema", self.bucket.name, self.name), None, self.name)


class StandinTableInTransaction:
    """Mirrors ``vastdb.table.TableInTransaction`` (what ``tx.table_from_metadata`` returns)."""

    def __init__(self, metadata: TableMetadata, tx: StandinTransaction) -> None:
        self._metadata = metadata
        self._tx = tx

    ref = property(lambda self: self._metadata.ref)
    name = property(lambda self: self.ref.table)
    path = property(lambda self: self.ref.full_path)
    arrow_schema = property(lambda self: self._metadata.arrow_schema)
    stats = property(lambda self: self._metadata.stats)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, type(self)) and self.ref == other.ref

    def __getitem__(self, col_name: str) -> ibis.Column:
        return self._metadata.ibis_table[col_name]

    def sorted_columns(self) -> list[pa.Field]:
        return self._metadata.sorted_columns.copy()

    def reload_schema(self) -> None:
        self._metadata.load_schema(self._tx)  # type: ignore[arg-type]

    def reload_stats(self) -> None:
        self._metadata.load_stats(self._tx)  # type: ignore[arg-type]

    @property
    def _internal_rowid_field(self) -> pa.Field:  # the client's view, from the metadata's table type
        sorted_types = {TableType.Elysium, TableType.Partitioned, TableType.SortedPartitions}
        if self._metadata.table_type in sorted_types:
            return _internal.INTERNAL_ROW_ID_SORTED_FIELD
        return _internal.INTERNAL_ROW_ID_FIELD

    @property
    def _is_sorted_table(self) -> bool:
        return self._metadata.table_type in {TableType.Elysium, TableType.SortedPartitions}

    # -- select: the SDK's client-side steps, in the SDK's order, then the "server" -------------------------
    def select(self, columns: Optional[list[str]] = None,
               predicate: Union[ibis.expr.types.BooleanColumn, ibis.common.deferred.Deferred, bool, None] = None,
               config: Optional[QueryConfig] = None, *, internal_row_id: bool = False,
               limit_rows: Optional[int] = None) -> pa.RecordBatchReader:
        if self._metadata.table_type in {TableType.Partitioned, TableType.SortedPartitions}:  # ValueError if unset
            raise NotImplementedError("the stand-in does not model partitioned tables")
        row_count_estimate = None if self.stats is None else self.stats.num_rows
        if limit_rows is not None and limit_rows < 0:
            raise ValueError("limit_rows must be a non-negative integer or None")
        config = config or QueryConfig()
        if config.data_endpoints is None and self._metadata.stats is None:
            self._metadata.load_stats(self._tx)  # type: ignore[arg-type]  # SDK: _discover_endpoints()
        query_schema = self.arrow_schema
        select_columns = query_schema.names if columns is None else columns
        if internal_row_id:
            query_schema = pa.schema([self._internal_rowid_field, *query_schema])
            select_columns.append(INTERNAL_ROW_ID)  # SDK quirk: mutates the caller's list
        if predicate is True:
            predicate = None
        if predicate is False:
            schema = _internal.get_response_schema(schema=query_schema, field_names=select_columns)
            return pa.RecordBatchReader.from_batches(schema, [])
        if isinstance(predicate, ibis.common.deferred.Deferred):
            predicate = predicate.resolve(self._metadata.ibis_table)
        if config.num_splits is None and row_count_estimate is None and not self._is_sorted_table:
            raise AssertionError("Select requires either config.num_splits or loaded stats or sorted_table.")
        request = _internal.build_query_data_request(schema=query_schema, predicate=predicate,
                                                     field_names=select_columns)
        if len(request.serialized) > util.MAX_QUERY_DATA_REQUEST_SIZE:
            raise errors.TooLargeRequest(f"{len(request.serialized)} bytes")
        if config.queue_priority is not None and config.queue_priority < 0:
            raise _bad_request("queue_priority must be non-negative", self.path)
        return self._server_query(query_schema, request, predicate, limit_rows)

    def _server_query(self, query_schema: pa.Schema, request: _internal.QueryDataRequest,
                      predicate: Any, limit_rows: Optional[int]) -> pa.RecordBatchReader:
        tdef = self._tx._table_def(self.ref)
        data = self._server_table(tdef)
        predicate_names = _internal._column_names_in_node_tree(predicate) if predicate is not None else set()
        for name in set(request.response_schema.names) | predicate_names:  # a stale client schema is refused
            if name not in data.schema.names or not data.schema.field(name).type.equals(query_schema.field(name).type):
                raise _bad_request(f"column {name!r} does not match the table", self.path)
        if predicate is not None:
            data = data.filter(_evaluate(predicate.op(), data))
        rng = self._tx._cluster._rng
        with self._tx._cluster._lock:
            order = list(range(data.num_rows))
            rng.shuffle(order)  # the server returns rows in no particular order
            if limit_rows:  # SDK quirk: limit_rows=0 means no limit. N arbitrary rows, not the first N
                order = order[:limit_rows]
            # split into 2..5 batches of random sizes, as several splits and sub-splits would
            cuts = sorted(rng.sample(range(1, len(order)), min(len(order) - 1, rng.randint(1, 4)))) if order else []
        result = data.take(pa.array(order, pa.int64())).select(request.response_schema.names)
        result = result.cast(request.response_schema)
        batches = [pa.RecordBatch.from_arrays([c.combine_chunks() for c in result.slice(a, b - a).columns],
                                              schema=request.response_schema)
                   for a, b in itertools.pairwise([0, *cuts, len(order)]) if b > a]
        return pa.RecordBatchReader.from_batches(request.response_schema, self._drain_in_transaction(batches))

    def _drain_in_transaction(self, batches: list[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        for batch in batches:
            if not self._tx.is_active:
                raise errors.MissingTransaction()  # the SDK's reader fails once its transaction ended
            yield batch

    def _server_table(self, tdef: _TableDef) -> pa.Table:
        """The rows this transaction sees; a stored row maps column names to one-element arrays."""
        rows = self._tx._cluster._rows_of(self._tx, tdef.table_id)
        ids = list(rows)
        columns = {}
        for f in tdef.arrow_schema:
            null = pa.nulls(1, f.type)  # columns added after the row was written read as null
            cells = [rows[i].get(f.name, null) for i in ids]
            columns[f.name] = pa.concat_arrays(cells) if cells else pa.array([], f.type)
        row_ids = [Decimal(i) for i in ids] if tdef.sorting_key else ids
        columns[INTERNAL_ROW_ID] = pa.array(row_ids, tdef.row_id_type)
        return pa.table(columns)

    # -- writes: the SDK's client-side code, then the "server" ----------------------------------------------
    def insert(self, rows: Union[pa.RecordBatch, pa.Table], by_columns: bool = True) -> pa.ChunkedArray:
        inserter = _by_column_inserter.Inserter(self._server_insert, self._server_update,
                                                _internal.MAX_REQUEST_BODY_SIZE, self.arrow_schema,
                                                self._metadata.non_updatable_column_names())
        if isinstance(rows, pa.Table):
            if rows.num_rows > 0:
                rows = rows.combine_chunks().to_batches()[0]
            else:
                rows = pa.RecordBatch.from_arrays([pa.array([], type=f.type) for f in rows.schema], schema=rows.schema)
        return inserter.insert(rows)

    def update(self, rows: Union[pa.RecordBatch, pa.Table], columns: Optional[list[str]] = None) -> None:
        try:
            rows_chunk = rows[INTERNAL_ROW_ID]
        except KeyError:
            raise errors.MissingRowIdColumn
        if columns is None:
            columns = [name for name in rows.schema.names if name != INTERNAL_ROW_ID]
        fields = [self._internal_rowid_field, *(rows.field(c) for c in columns)]
        values = [_combine(rows_chunk), *(_combine(rows[c]) for c in columns)]
        # like the SDK, this casts the caller's row ids to the type the *metadata* says the table has
        self._server_update(pa.record_batch(schema=pa.schema(fields), data=values))

    def delete(self, rows: Union[pa.RecordBatch, pa.Table]) -> None:
        try:
            rows_chunk = rows[INTERNAL_ROW_ID]
        except KeyError:
            raise errors.MissingRowIdColumn
        self._server_delete(pa.record_batch(schema=pa.schema([self._internal_rowid_field]), data=[_combine(rows_chunk)]))

    def _check_row_ids(self, tdef: _TableDef, batch: pa.RecordBatch) -> list[int]:
        field = batch.schema.field(INTERNAL_ROW_ID)
        if not field.type.equals(tdef.row_id_type):  # ASSUMPTION: the server refuses a wrong row-id type
            raise _bad_request(f"$row_id must be {tdef.row_id_type}, got {field.type}", self.path)
        ids = [int(i) for i in batch[INTERNAL_ROW_ID].to_pylist()]
        for i in ids:  # ASSUMPTION: unknown or already deleted row ids are refused, not skipped
            if self._tx._cluster._get(self._tx, tdef.table_id, i) is None:
                raise _http_error(errors.NotFound, 404, "NoSuchRow", f"row id {i} does not exist", self.path)
        return ids

    def _check_columns(self, tdef: _TableDef, batch: pa.RecordBatch) -> None:
        names = [n for n in batch.schema.names if n != INTERNAL_ROW_ID]
        if len(set(names)) != len(names):
            raise _bad_request(f"duplicate columns {names}", self.path)
        for name in names:  # ASSUMPTION: unknown columns and type mismatches are refused (error class unknown)
            if name not in tdef.arrow_schema.names:
                raise _bad_request(f"no column {name!r} in the table", self.path)
            if not batch.schema.field(name).type.equals(tdef.arrow_schema.field(name).type):
                raise _bad_request(f"column {name!r} is {tdef.arrow_schema.field(name).type}, "
                                   f"got {batch.schema.field(name).type}", self.path)

    def _server_insert(self, batch: pa.RecordBatch) -> pa.Array:
        tdef = self._tx._table_def(self.ref)
        if INTERNAL_ROW_ID in batch.schema.names:  # ASSUMPTION: only external row-id tables accept ids
            raise _bad_request("$row_id cannot be inserted", self.path)
        self._check_columns(tdef, batch)
        # Omitted columns become null: the SDK's own Inserter relies on inserting a column subset and
        # updating the rest. ASSUMPTION: sort-key columns are required, since they can never be updated.
        if missing := [k for k in tdef.sorting_key if k not in batch.schema.names]:
            raise _bad_request(f"sorting-key columns {missing} are required on insert", self.path)
        ids = self._tx._cluster._allocate_row_ids(tdef, batch.num_rows)
        for j, row_id in enumerate(ids):
            row = {name: batch.column(name).slice(j, 1) for name in batch.schema.names}
            self._tx._cluster._put(self._tx, tdef.table_id, row_id, row, self.path)
        return pa.array([Decimal(i) for i in ids] if tdef.sorting_key else ids, tdef.row_id_type)

    def _server_update(self, batch: pa.RecordBatch) -> None:
        tdef = self._tx._table_def(self.ref)
        self._check_columns(tdef, batch)
        if frozen := [n for n in batch.schema.names if n in tdef.sorting_key]:
            # ASSUMPTION: the server refuses this with a 400 (the SDK does not check it client-side)
            raise _bad_request(f"sorting-key columns {frozen} cannot be updated", self.path)
        ids = self._check_row_ids(tdef, batch)
        names = [n for n in batch.schema.names if n != INTERNAL_ROW_ID]
        for j, row_id in enumerate(ids):
            change = {name: batch.column(name).slice(j, 1) for name in names}
            row = self._tx._cluster._get(self._tx, tdef.table_id, row_id)
            self._tx._cluster._put(self._tx, tdef.table_id, row_id, {**row, **change}, self.path)

    def _server_delete(self, batch: pa.RecordBatch) -> None:
        tdef = self._tx._table_def(self.ref)
        for row_id in self._check_row_ids(tdef, batch):
            self._tx._cluster._put(self._tx, tdef.table_id, row_id, None, self.path)


class StandinTable(StandinTableInTransaction):
    """Mirrors ``vastdb.table.Table`` (what ``schema.table()`` returns): loads its metadata on creation."""

    def __init__(self, metadata: TableMetadata, handle: int, tx: StandinTransaction) -> None:
        super().__init__(metadata, tx)
        self._metadata.load(tx)  # type: ignore[arg-type]
        self.handle = handle

    @property
    def tx(self) -> StandinTransaction:
        return self._tx

    @property
    def stats(self) -> _internal.TableStats:
        self.reload_stats()
        return self._metadata.stats

    def get_stats(self) -> _internal.TableStats:
        return self.stats

    def columns(self) -> pa.Schema:
        self.reload_schema()
        return self._metadata.arrow_schema

    def sorted_columns(self) -> list[pa.Field]:
        """Like the SDK (deprecated path): raises ``errors.BadRequest`` on a table without a sorting key."""
        self._metadata.load_sorted_columns(self._tx)  # type: ignore[arg-type]
        return self._metadata.sorted_columns

    @property
    def sorted_table(self) -> bool:
        return self._is_sorted_table

    def drop(self) -> None:
        self._tx._table_def(self.ref)
        key = ("table", self.ref.bucket, self.ref.schema, self.ref.table)
        self._tx._cluster._put(self._tx, _CATALOG, key, None, self.path)

    def add_column(self, new_column: pa.Schema) -> None:
        validate_ibis_support_schema(new_column)
        _check_server_types(new_column)
        tdef = self._tx._table_def(self.ref)
        if clash := [n for n in new_column.names if n in tdef.arrow_schema.names]:
            raise _bad_request(f"columns {clash} already exist", self.path)  # ASSUMPTION: error class
        new = _TableDef(tdef.table_id, pa.schema([*tdef.arrow_schema, *new_column]), tdef.sorting_key)
        key = ("table", self.ref.bucket, self.ref.schema, self.ref.table)
        self._tx._cluster._put(self._tx, _CATALOG, key, new, self.path)
        self._metadata.load_schema(self._tx)  # type: ignore[arg-type]


def _check_server_types(schema: pa.Schema) -> None:
    """The server refuses null and dictionary columns that ibis accepts (the SDK's test_unsupported_types)."""
    if bad := [f for f in schema if pa.types.is_null(f.type) or pa.types.is_dictionary(f.type)]:
        raise errors.NotSupportedSchema(message=f"unsupported column types {bad}", schema=schema)


def _combine(column: Union[pa.Array, pa.ChunkedArray]) -> pa.Array:
    return column.combine_chunks() if hasattr(column, "combine_chunks") else column


# -- predicate evaluation ------------------------------------------------------------------------------------
# Only reached after build_query_data_request accepted the predicate, so its shape is the SDK's grammar
# (vastdb._internal.Predicate.serialize): an AND of groups, each an OR of leaves on one column, a leaf being
# ==, !=, <, <=, >, >= against a literal, isin (InValues), isnull, ~isnull, between, startswith, contains.
_COMPARE = {ops.Equals: pc.equal, ops.NotEquals: pc.not_equal, ops.Greater: pc.greater,
            ops.GreaterEqual: pc.greater_equal, ops.Less: pc.less, ops.LessEqual: pc.less_equal}


def _flatten(op: ops.Node, kind: type) -> Iterator[ops.Node]:
    if isinstance(op, kind):
        for arg in op.args:
            yield from _flatten(arg, kind)
    else:
        yield op


def _evaluate(op: ops.Node, table: pa.Table) -> pa.ChunkedArray:
    mask = pa.chunked_array([pa.array([True] * table.num_rows, pa.bool_())])
    for group in _flatten(op, ops.And):
        leaves = [_leaf(leaf, table) for leaf in _flatten(group, ops.Or)]
        mask = pc.and_(mask, leaves[0] if len(leaves) == 1 else _or_all(leaves))
    return mask


def _or_all(masks: list[Any]) -> Any:
    result = masks[0]
    for m in masks[1:]:
        result = pc.or_(result, m)
    return result


def _leaf(op: ops.Node, table: pa.Table) -> Any:
    """One leaf as a null-free boolean mask (no negation sits above a leaf, so SQL NULL acts as false)."""
    if isinstance(op, ops.IsNull):
        return pc.is_null(_column(op.args[0], table))
    if isinstance(op, ops.Not):  # the serializer only lets ~isnull through
        return pc.is_valid(_column(op.args[0].args[0], table))
    col = _column(op.args[0], table)
    if isinstance(op, ops.Between):
        lower, upper = (_literal(arg.value, col.type) for arg in op.args[1:])
        result = pc.and_(pc.greater_equal(col, lower), pc.less_equal(col, upper))
    elif isinstance(op, ops.StartsWith):
        prefix = op.args[1].value
        if not prefix:  # the serializer turns startswith('') into IS NOT NULL
            return pc.is_valid(col)
        lower, upper = util.prefix_to_range(prefix)  # the server's byte range, as sent on the wire
        raw = col.cast(pa.binary())
        result = pc.and_(pc.greater_equal(raw, pa.scalar(lower, pa.binary())),
                         pc.less(raw, pa.scalar(upper, pa.binary())))
    elif isinstance(op, ops.StringContains):
        result = pc.match_substring(col, op.args[1].value)
    elif isinstance(op, ops.InValues):
        result = pc.is_in(col, value_set=pa.array([_wire_value(o.value, col.type) for o in op.args[1]], col.type))
    elif type(op) in _COMPARE:
        result = _COMPARE[type(op)](col, _literal(op.args[1].value, col.type))
    else:
        raise NotImplementedError(f"the stand-in cannot evaluate {type(op).__name__}")
    return pc.fill_null(result, False)


def _column(op: ops.Node, table: pa.Table) -> pa.ChunkedArray:
    path = []
    while isinstance(op, ops.StructField):
        path.append(op.name)
        op = op.arg
    column = table[op.name]
    for name in reversed(path):
        column = pc.struct_field(column, name)
    if pa.types.is_fixed_size_list(column.type):
        raise NotImplementedError("the stand-in does not evaluate predicates on fixed-size lists")
    return column


def _literal(value: Any, typ: pa.DataType) -> pa.Scalar:
    return pa.array([_wire_value(value, typ)], typ)[0]


def _wire_value(value: Any, typ: pa.DataType) -> Any:
    """The literal as the serializer encodes it (Predicate.build_literal_impl) for a column of type ``typ``,
    including its lossy steps: an int column compared with 1.5 is compared with 1; decimals go through float.
    Dates, times and timestamps are converted by pyarrow, as the serializer does."""
    if pa.types.is_integer(typ):
        return int(value)
    if pa.types.is_floating(typ):
        return float(value)
    if pa.types.is_boolean(typ):
        return value.lower() == "true" if isinstance(value, str) else bool(value)
    if pa.types.is_decimal(typ):
        return Decimal(int(float(value) * 10 ** typ.scale)).scaleb(-typ.scale)
    return value
