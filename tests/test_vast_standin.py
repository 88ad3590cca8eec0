"""The vastdb stand-in behaves like the SDK and the server where an adapter could tell the difference."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

vastdb = pytest.importorskip("vastdb")

import ibis  # noqa: E402
import pyarrow as pa  # noqa: E402
import pyarrow.compute as pc  # noqa: E402
from ibis import _  # noqa: E402
from vastdb import _internal, errors  # noqa: E402
from vastdb.config import QueryConfig  # noqa: E402
from vastdb.table_metadata import TableMetadata, TableRef, TableType  # noqa: E402

from tests.vast_standin import VastStandin  # noqa: E402

SEGMENTS = pa.schema([
    ("flow_id", pa.string()), ("start_ns", pa.int64()), ("end_ns", pa.int64()),
    ("object_id", pa.string()), ("deleted", pa.bool_()),
])
ROW_ID = _internal.INTERNAL_ROW_ID


def segments(n: int, flow_id: str = "f") -> pa.Table:
    return pa.table({
        "flow_id": [flow_id] * n, "start_ns": [i * 10 for i in range(n)], "end_ns": [i * 10 + 10 for i in range(n)],
        "object_id": [None if i % 5 == 0 else f"obj-{i}" for i in range(n)],
        "deleted": [None if i % 4 == 0 else i % 3 == 0 for i in range(n)],
    }, schema=SEGMENTS)


@pytest.fixture
def cluster() -> VastStandin:
    return VastStandin(buckets=("tams",), seed=1234)


@pytest.fixture
def session(cluster: VastStandin):
    return cluster.connect(endpoint="http://vast.invalid", access="a", secret="s", timeout=5)


def make_table(session, rows: pa.Table | None = None, name: str = "segments", sorting_key=()):
    with session.transaction() as tx:
        schema = tx.bucket("tams").create_schema("s", fail_if_exists=False)
        table = schema.create_table(name, SEGMENTS, sorting_key=list(sorting_key))
        if rows is not None:
            table.insert(rows)


def select_all(session, predicate=None, name: str = "segments", **kwargs) -> pa.Table:
    with session.transaction() as tx:
        return tx.bucket("tams").schema("s").table(name).select(predicate=predicate, **kwargs).read_all()


def by_start(table: pa.Table) -> list[dict]:
    return table.sort_by([("flow_id", "ascending"), ("start_ns", "ascending")]).to_pylist()


# -- guard on the private SDK API the stand-in depends on -------------------------------------------------------

def test_sdk_version_and_predicate_serializer_are_the_ones_the_standin_was_written_for() -> None:
    assert vastdb.version().startswith("2.1."), "re-check vast_standin.py against the new SDK before bumping"
    t = ibis.table(ibis.Schema.from_pyarrow(SEGMENTS), "tams/s/segments")
    supported = ((t.flow_id == "f") & (t.start_ns < 100) & (t.end_ns > 10)) & (t.deleted.isnull() | (t.deleted == False))  # noqa: E712
    request = _internal.build_query_data_request(schema=SEGMENTS, predicate=supported, field_names=["object_id"])
    assert isinstance(request.serialized, (bytes, bytearray)) and len(request.serialized) > 0
    assert request.response_schema.names == ["object_id"]
    with pytest.raises(NotImplementedError):
        _internal.build_query_data_request(schema=SEGMENTS, predicate=(t.start_ns < 5) | (t.end_ns > 10))
    # private names the stand-in uses
    assert _internal.INTERNAL_ROW_ID_FIELD.type == pa.uint64()
    assert _internal.INTERNAL_ROW_ID_SORTED_FIELD.type == pa.decimal128(38, 0)
    assert callable(_internal._column_names_in_node_tree) and callable(_internal.get_response_schema)
    from vastdb import _by_column_inserter
    assert callable(_by_column_inserter.Inserter.insert)


# -- session factory, catalog and errors ------------------------------------------------------------------------

def test_connect_checks_arguments_like_vastdb_connect(cluster: VastStandin) -> None:
    cluster.connect(endpoint="http://x", access="a", secret="s", timeout=3, ssl_verify=False)
    with pytest.raises(TypeError):
        cluster.connect(endpoint="http://x", acces="typo")


def test_catalog_uses_the_sdk_error_classes(session) -> None:
    with session.transaction() as tx:
        with pytest.raises(errors.MissingBucket):
            tx.bucket("nope")
        bucket = tx.bucket("tams")
        with pytest.raises(errors.MissingSchema):
            bucket.schema("s")
        assert bucket.schema("s", fail_if_missing=False) is None
        schema = bucket.create_schema("s")
        with pytest.raises(errors.SchemaExists):
            bucket.create_schema("s")
        assert bucket.create_schema("s", fail_if_exists=False) == schema
        assert [s.name for s in bucket.schemas()] == ["s"]
        with pytest.raises(errors.MissingTable):
            schema.table("t")
        table = schema.create_table("t", SEGMENTS)
        with pytest.raises(errors.TableExists):
            schema.create_table("t", SEGMENTS)
        assert schema.create_table("t", SEGMENTS, fail_if_exists=False) == table
        assert schema.tablenames() == ["t"] and schema.tables() == [table]
        assert table.name == "t" and table.arrow_schema == SEGMENTS and not table.sorted_table
        with pytest.raises(errors.Conflict):
            schema.drop()  # not empty
        with pytest.raises(errors.NotSupportedSchema):
            schema.create_table("bad", pa.schema([("n", pa.null())]))
        with pytest.raises(ValueError, match="don't exist"):
            schema.create_table("bad", SEGMENTS, sorting_key=["nope"])
        table.drop()
        schema.drop()
        assert bucket.schemas() == []


def test_ddl_is_transactional(session) -> None:
    with pytest.raises(ZeroDivisionError):
        with session.transaction() as tx:
            tx.bucket("tams").create_schema("s").create_table("t", SEGMENTS)
            1 / 0
    with session.transaction() as tx:
        assert tx.bucket("tams").schema("s", fail_if_missing=False) is None


def test_add_column_leaves_old_rows_null(session) -> None:
    make_table(session, segments(3))
    with session.transaction() as tx:
        table = tx.bucket("tams").schema("s").table("segments")
        table.add_column(pa.schema([("size", pa.int64())]))
        assert table.arrow_schema.names[-1] == "size"
        table.insert(pa.table({"flow_id": ["g"], "size": [7]}))
    rows = select_all(session)
    assert sorted(rows["size"].to_pylist(), key=str) == [7, None, None, None]


# -- (a) predicates ---------------------------------------------------------------------------------------------

SUPPORTED = {
    "eq": (lambda t: t["start_ns"] == 50, pc.field("start_ns") == 50),
    "ne": (lambda t: t["object_id"] != "obj-3", pc.field("object_id") != "obj-3"),
    "lt": (lambda t: t["start_ns"] < 50, pc.field("start_ns") < 50),
    "le": (lambda t: t["start_ns"] <= 50, pc.field("start_ns") <= 50),
    "gt": (lambda t: t["end_ns"] > 150, pc.field("end_ns") > 150),
    "ge": (lambda t: t["end_ns"] >= 150, pc.field("end_ns") >= 150),
    "literal on the left": (lambda t: 50 < t["start_ns"], pc.field("start_ns") > 50),
    "isin": (lambda t: t["start_ns"].isin([0, 30, 999]), pc.field("start_ns").isin([0, 30, 999])),
    "isnull": (lambda t: t["object_id"].isnull(), pc.field("object_id").is_null()),
    "not isnull": (lambda t: ~t["object_id"].isnull(), pc.field("object_id").is_valid()),
    "between is inclusive": (lambda t: t["start_ns"].between(30, 60),
                             (pc.field("start_ns") >= 30) & (pc.field("start_ns") <= 60)),
    "or within one column": (lambda t: (t["start_ns"] < 20) | (t["start_ns"] > 170) | t["start_ns"].isin([100]),
                             (pc.field("start_ns") < 20) | (pc.field("start_ns") > 170)
                             | (pc.field("start_ns") == 100)),
    "null-aware soft delete": (lambda t: t["deleted"].isnull() | (t["deleted"] == False),  # noqa: E712
                               pc.field("deleted").is_null() | (pc.field("deleted") == False)),  # noqa: E712
    "overlap": (lambda t: (t["flow_id"] == "f") & (t["start_ns"] < 100) & (t["end_ns"] > 35),
                (pc.field("flow_id") == "f") & (pc.field("start_ns") < 100) & (pc.field("end_ns") > 35)),
    "startswith": (lambda t: t["object_id"].startswith("obj-1"), pc.starts_with(pc.field("object_id"), "obj-1")),
    "startswith empty is not null": (lambda t: t["object_id"].startswith(""), pc.field("object_id").is_valid()),
    "contains": (lambda t: t["object_id"].contains("-1"), pc.match_substring(pc.field("object_id"), "-1")),
    "string range": (lambda t: t["object_id"] >= "obj-15", pc.field("object_id") >= "obj-15"),
}


@pytest.mark.parametrize("form", ["deferred", "table column"])
@pytest.mark.parametrize("name", list(SUPPORTED))
def test_supported_predicates_select_what_pyarrow_selects(session, name: str, form: str) -> None:
    data = pa.concat_tables([segments(20), segments(3, flow_id="g")])
    make_table(session, data)
    build, expected = SUPPORTED[name]
    with session.transaction() as tx:
        table = tx.bucket("tams").schema("s").table("segments")
        predicate = build(_) if form == "deferred" else build(table)
        actual = table.select(predicate=predicate).read_all()
    assert by_start(actual) == by_start(data.filter(expected))


def test_literals_are_cast_to_the_column_type_like_the_wire_request(session) -> None:
    make_table(session, segments(5))
    # the serializer sends int(1.5) == 1 for an int64 column, so the server tests start_ns > 1
    assert sorted(select_all(session, _.start_ns > 1.5)["start_ns"].to_pylist()) == [10, 20, 30, 40]
    assert select_all(session, _.start_ns >= 0.5)["start_ns"].to_pylist().count(0) == 1  # >= int(0.5)


REJECTED = {
    "cross-column or": lambda t: (t["start_ns"] < 5) | (t["end_ns"] > 10),
    "negation": lambda t: ~(t["start_ns"] == 5),
    "notin": lambda t: t["start_ns"].notin([1, 2]),
    "notnull() (use ~isnull())": lambda t: t["object_id"].notnull(),
    "column arithmetic": lambda t: (t["start_ns"] + 5) < 10,
    "column against column": lambda t: t["start_ns"] < t["end_ns"],
    "isin of nothing": lambda t: t["start_ns"].isin([]),
    "bare boolean column": lambda t: t["deleted"],
    "endswith": lambda t: t["object_id"].endswith("1"),
    "or of ands": lambda t: ((t["start_ns"] > 1) & (t["start_ns"] < 5)) | (t["start_ns"] == 9),
}


@pytest.mark.parametrize("name", list(REJECTED))
def test_predicates_the_sdk_rejects_raise_not_implemented(session, name: str) -> None:
    make_table(session, segments(3))
    with session.transaction() as tx:
        table = tx.bucket("tams").schema("s").table("segments")
        with pytest.raises(NotImplementedError):
            table.select(predicate=REJECTED[name](table))
        with pytest.raises(NotImplementedError):
            table.select(predicate=REJECTED[name](_))


def test_an_isin_past_the_request_size_cap_is_too_large(session) -> None:
    make_table(session, segments(3))
    with pytest.raises(errors.TooLargeRequest):  # about 116 bytes per int64 value, 4.7 MB cap
        select_all(session, _.start_ns.isin(list(range(41_000))))
    assert select_all(session, _.start_ns.isin(list(range(0, 20_000, 20)))).num_rows == 2


def test_true_and_false_predicates(session) -> None:
    make_table(session, segments(4))
    assert select_all(session, True).num_rows == 4
    empty = select_all(session, False, columns=["start_ns"])
    assert empty.num_rows == 0 and empty.schema.names == ["start_ns"]


# -- (b) row order, (c) limit_rows ------------------------------------------------------------------------------

def test_rows_come_back_shuffled_in_several_batches_of_varying_size(session) -> None:
    data = segments(200)
    make_table(session, data)
    orders, sizes = set(), set()
    with session.transaction() as tx:
        table = tx.bucket("tams").schema("s").table("segments")
        for _i in range(5):
            batches = list(table.select(columns=["start_ns"]))
            assert len(batches) >= 2
            sizes.update(b.num_rows for b in batches)
            result = pa.Table.from_batches(batches)
            assert sorted(result["start_ns"].to_pylist()) == data["start_ns"].to_pylist()
            orders.add(tuple(result["start_ns"].to_pylist()))
    assert len(orders) == 5 and len(sizes) > 2


def test_the_seed_makes_row_order_reproducible() -> None:
    def run(seed: int) -> list[int]:
        s = VastStandin(seed=seed).connect(endpoint="http://x")
        make_table(s, segments(50))
        return select_all(s)["start_ns"].to_pylist()

    assert run(7) == run(7) != run(8)


def test_limit_rows_returns_arbitrary_matching_rows_not_the_first(session) -> None:
    make_table(session, segments(100))
    seen: set[int] = set()
    for _i in range(10):
        rows = select_all(session, _.start_ns >= 500, limit_rows=5)
        assert rows.num_rows == 5 and all(s >= 500 for s in rows["start_ns"].to_pylist())
        seen.update(rows["start_ns"].to_pylist())
    assert len(seen) > 5 and seen != {500, 510, 520, 530, 540}
    assert select_all(session, limit_rows=0).num_rows == 100  # SDK quirk: 0 means no limit
    with pytest.raises(ValueError):
        select_all(session, limit_rows=-1)


def test_select_with_row_ids_appends_to_the_callers_columns_list(session) -> None:
    make_table(session, segments(3))
    columns = ["start_ns"]
    result = select_all(session, columns=columns, internal_row_id=True)
    assert columns == ["start_ns", ROW_ID]  # the real SDK mutates the list: pass a copy
    assert result.schema.names == ["start_ns", ROW_ID]


# -- (d) transactions -------------------------------------------------------------------------------------------

def test_writes_are_visible_in_their_transaction_and_hidden_from_others_until_commit(session) -> None:
    make_table(session)
    with session.transaction() as writer, session.transaction() as reader:
        writer.bucket("tams").schema("s").table("segments").insert(segments(3))
        assert writer.bucket("tams").schema("s").table("segments").select().read_all().num_rows == 3
        assert reader.bucket("tams").schema("s").table("segments").select().read_all().num_rows == 0
    assert select_all(session).num_rows == 3


def test_a_transaction_reads_the_snapshot_it_began_with(session) -> None:
    make_table(session)
    with session.transaction() as early:
        table = early.bucket("tams").schema("s").table("segments")
        with session.transaction() as tx:
            tx.bucket("tams").schema("s").table("segments").insert(segments(2))
        assert table.select().read_all().num_rows == 0  # ASSUMPTION: snapshot isolation
    assert select_all(session).num_rows == 2


def test_an_exception_rolls_back_every_write(session) -> None:
    make_table(session, segments(3))
    with pytest.raises(RuntimeError):
        with session.transaction() as tx:
            table = tx.bucket("tams").schema("s").table("segments")
            table.insert(segments(2, flow_id="g"))
            table.delete(table.select(columns=["start_ns"], predicate=_.start_ns == 0, internal_row_id=True).read_all())
            raise RuntimeError("abort")
    assert by_start(select_all(session)) == by_start(segments(3))


def test_concurrent_transactions_changing_different_rows_both_persist(session) -> None:
    make_table(session, segments(4))
    with session.transaction() as tx1, session.transaction() as tx2:
        t1 = tx1.bucket("tams").schema("s").table("segments")
        t2 = tx2.bucket("tams").schema("s").table("segments")
        r1 = t1.select(["object_id"], _.start_ns == 10, internal_row_id=True).read_all()
        r2 = t2.select(["object_id"], _.start_ns == 20, internal_row_id=True).read_all()
        t1.update(r1.set_column(0, "object_id", pa.array(["one"])))
        t2.update(r2.set_column(0, "object_id", pa.array(["two"])))
        t2.insert(segments(1, flow_id="g"))
    rows = select_all(session)
    assert {"one", "two"} <= set(rows["object_id"].to_pylist()) and rows.num_rows == 5


def test_writing_a_row_another_transaction_wrote_is_a_conflict(session) -> None:
    make_table(session, segments(2))
    with pytest.raises(errors.Conflict):
        with session.transaction() as tx1, session.transaction() as tx2:
            t1 = tx1.bucket("tams").schema("s").table("segments")
            t2 = tx2.bucket("tams").schema("s").table("segments")
            row = t1.select(["object_id"], _.start_ns == 10, internal_row_id=True).read_all()
            t1.update(row.set_column(0, "object_id", pa.array(["one"])))
            t2.delete(row)  # ASSUMPTION: first writer wins, the second fails at once
    assert select_all(session).num_rows == 2


def test_a_reader_must_be_drained_inside_its_transaction(session) -> None:
    make_table(session, segments(20))
    with session.transaction() as tx:
        reader = tx.bucket("tams").schema("s").table("segments").select()
    with pytest.raises(errors.MissingTransaction):
        reader.read_all()


def test_many_threads_writing_their_own_rows_all_persist(session) -> None:
    make_table(session)
    barrier = threading.Barrier(8)

    def work(i: int) -> None:
        with session.transaction() as tx:
            table = tx.bucket("tams").schema("s").table("segments")
            table.insert(segments(10, flow_id=f"flow-{i}"))
            barrier.wait()
            rows = table.select(["end_ns"], _.flow_id == f"flow-{i}", internal_row_id=True).read_all()
            table.update(rows.set_column(0, "end_ns", pc.add(rows["end_ns"], 1)))

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(work, range(8)))
    rows = select_all(session)
    assert rows.num_rows == 80 and all(e % 10 == 1 for e in rows["end_ns"].to_pylist())


# -- (e) row ids ------------------------------------------------------------------------------------------------

def test_plain_tables_use_uint64_row_ids(session) -> None:
    with session.transaction() as tx:
        table = tx.bucket("tams").create_schema("s").create_table("segments", SEGMENTS)
        ids = table.insert(segments(3))
        assert ids.type == pa.uint64() and ids.to_pylist() == [0, 1, 2]
        assert table.select(internal_row_id=True).read_all().schema.field(ROW_ID).type == pa.uint64()


def test_sorted_tables_use_decimal_row_ids_and_freeze_the_sort_key(session) -> None:
    make_table(session, sorting_key=["flow_id", "start_ns"])
    with session.transaction() as tx:
        table = tx.bucket("tams").schema("s").table("segments")
        assert table.sorted_table
        with pytest.warns(DeprecationWarning):  # Table.sorted_columns() takes the SDK's deprecated path
            assert [f.name for f in table.sorted_columns()] == ["flow_id", "start_ns"]
        ids = table.insert(segments(3))
        assert ids.type == pa.decimal128(38, 0)
        assert [int(i) & 0xFFFFFFFFFFFFFF for i in ids.to_pylist()] == [0, 1, 2]
        assert all(int(i) > 2**63 for i in ids.to_pylist())  # does not fit an int64
        rows = table.select(["start_ns", "object_id"], _.start_ns == 10, internal_row_id=True).read_all()
        assert rows.schema.field(ROW_ID).type == pa.decimal128(38, 0)
        table.update(rows, columns=["object_id"])  # non-key columns update fine
        with pytest.raises(errors.BadRequest):
            table.update(rows, columns=["start_ns"])
        with pytest.raises(errors.BadRequest):  # ASSUMPTION: sort-key columns are required on insert
            table.insert(pa.table({"object_id": ["x"]}))


def test_sorted_tables_on_vast_5_5_report_sort_columns_through_column_metadata() -> None:
    session = VastStandin(vast_version=(5, 5, 0, 0)).connect(endpoint="http://x")
    make_table(session, segments(2), sorting_key=["flow_id", "start_ns"])
    with session.transaction() as tx:
        md = TableMetadata(TableRef("tams", "s", "segments"))
        md.load(tx)
        assert md.table_type == TableType.Elysium
        assert [f.name for f in md.sorted_columns] == ["flow_id", "start_ns"]
        table = tx.table_from_metadata(md)
        assert table.select(internal_row_id=True).read_all().schema.field(ROW_ID).type == pa.decimal128(38, 0)


def test_row_ids_are_cast_client_side_like_the_sdk_and_checked_server_side(session) -> None:
    make_table(session, segments(3))
    make_table(session, segments(3), name="sorted", sorting_key=["flow_id"])
    with session.transaction() as tx:
        table = tx.bucket("tams").schema("s").table("segments")
        # the SDK casts the caller's ids to the metadata's row-id type: int64 ids work on a plain table
        table.update(pa.table({ROW_ID: pa.array([0], pa.int64()), "object_id": ["cast"]}))
        with pytest.raises(pa.ArrowInvalid):  # not castable to uint64
            table.delete(pa.table({ROW_ID: pa.array(["zero"])}))
        with pytest.raises(errors.MissingRowIdColumn):
            table.delete(pa.table({"start_ns": [0]}))
        # metadata claiming a sorted table is Regular makes the client send uint64 ids: refused
        wrong = tx.table_from_metadata(TableMetadata(TableRef("tams", "s", "sorted"), SEGMENTS, TableType.Regular))
        wrong.reload_stats()
        with pytest.raises(errors.BadRequest):
            wrong.select(["object_id"], internal_row_id=True, config=QueryConfig(num_splits=1))
        with pytest.raises(errors.BadRequest):
            wrong.delete(pa.table({ROW_ID: pa.array([0], pa.uint64())}))


def test_updating_or_deleting_a_missing_row_is_refused(session) -> None:
    make_table(session, segments(2))
    with session.transaction() as tx:
        table = tx.bucket("tams").schema("s").table("segments")
        table.delete(pa.table({ROW_ID: pa.array([0], pa.uint64())}))
        with pytest.raises(errors.NotFound):  # ASSUMPTION: not silently skipped
            table.delete(pa.table({ROW_ID: pa.array([0], pa.uint64())}))
        with pytest.raises(errors.NotFound):
            table.update(pa.table({ROW_ID: pa.array([99], pa.uint64()), "object_id": ["x"]}))


# -- (f) no unique keys, (g) column types -------------------------------------------------------------------------

def test_duplicate_rows_insert_without_complaint(session) -> None:
    make_table(session, segments(3))
    make_table(session, segments(3), name="other")
    with session.transaction() as tx:
        tx.bucket("tams").schema("s").table("segments").insert(segments(3))
    rows = select_all(session)
    assert rows.num_rows == 6 and sorted(rows["start_ns"].to_pylist()) == [0, 0, 10, 10, 20, 20]


def test_inserts_must_match_the_column_types(session) -> None:
    make_table(session, segments(1))
    with session.transaction() as tx:
        table = tx.bucket("tams").schema("s").table("segments")
        with pytest.raises(errors.BadRequest):  # wrong type
            table.insert(pa.table({"flow_id": ["f"], "start_ns": pa.array([1], pa.int32())}))
        with pytest.raises(errors.BadRequest):  # column the table does not have
            table.insert(pa.table({"flow_id": ["f"], "max_bit_rate": [5]}))
        with pytest.raises(errors.BadRequest):
            table.update(pa.table({ROW_ID: pa.array([0], pa.uint64()), "start_ns": [1.5]}))
        # omitted columns become null: the SDK's own Inserter inserts column subsets, then updates the rest
        table.insert(pa.table({"flow_id": ["g"]}))
        # pyarrow, not the server, silently drops keys the schema lacks: the stand-in cannot see them
        batch = pa.RecordBatch.from_pydict({**segments(1, flow_id="h").to_pydict(), "max_bit_rate": [5]},
                                           schema=SEGMENTS)
        assert "max_bit_rate" not in batch.schema.names
        table.insert(batch)
    rows = select_all(session, _.flow_id.isin(["g", "h"]))
    assert rows.num_rows == 2 and rows["start_ns"].null_count == 1


def test_empty_inserts_return_no_row_ids_of_the_right_type(session) -> None:
    make_table(session)
    make_table(session, name="sorted", sorting_key=["flow_id"])
    with session.transaction() as tx:
        schema = tx.bucket("tams").schema("s")
        assert schema.table("segments").insert(segments(0)).type == pa.uint64()
        assert schema.table("sorted").insert(segments(0)).type == pa.decimal128(38, 0)


# -- table_from_metadata --------------------------------------------------------------------------------------

def test_table_from_metadata_needs_a_table_type_and_stats_like_the_sdk(session) -> None:
    make_table(session, segments(3))
    ref = TableRef("tams", "s", "segments")
    with session.transaction() as tx:
        with pytest.raises(ValueError, match="TableType was not loaded"):
            tx.table_from_metadata(TableMetadata(ref, SEGMENTS)).select().read_all()
        md = TableMetadata(ref, SEGMENTS, TableType.Regular)
        with pytest.raises(AssertionError, match="num_splits or loaded stats"):
            tx.table_from_metadata(md).select()
        assert tx.table_from_metadata(md).select(config=QueryConfig(num_splits=1)).read_all().num_rows == 3
        md.load_stats(tx)
        table = tx.table_from_metadata(md)
        assert table.select(predicate=table["start_ns"] > 0).read_all().num_rows == 2
        table.insert(segments(1, flow_id="g"))
        assert table.select().read_all().num_rows == 4
    with session.transaction() as tx:  # the same metadata is reusable across transactions
        assert tx.table_from_metadata(md).select().read_all().num_rows == 4


def test_a_stale_metadata_schema_is_refused(session) -> None:
    make_table(session, segments(1))
    stale = pa.schema([*SEGMENTS, ("size", pa.int64())])
    with session.transaction() as tx:
        md = TableMetadata(TableRef("tams", "s", "segments"), stale, TableType.Regular)
        md.load_stats(tx)
        with pytest.raises(errors.BadRequest):
            tx.table_from_metadata(md).select(["size"]).read_all()


def test_values_round_trip_losslessly_and_struct_fields_filter(session) -> None:
    import datetime as dt

    schema = pa.schema([
        ("ts", pa.timestamp("ns", tz="UTC")), ("dec", pa.decimal128(20, 3)), ("tags", pa.list_(pa.string())),
        ("rate", pa.struct([("num", pa.int32()), ("den", pa.int32())])), ("blob", pa.binary()),
        ("meta", pa.map_(pa.string(), pa.string())), ("n", pa.uint8()),
    ])
    data = pa.table({
        "ts": pa.array([1_700_000_000_123_456_789, None], schema.field("ts").type),
        "dec": pa.array([None, None], pa.decimal128(20, 3)), "tags": [["a", "b"], []],
        "rate": [{"num": 25, "den": 1}, None], "blob": [b"\x00\xff", b""],
        "meta": pa.array([[("k", "v")], None], schema.field("meta").type), "n": pa.array([2, 1], pa.uint8()),
    }, schema=schema)
    with session.transaction() as tx:
        tx.bucket("tams").create_schema("s").create_table("t", schema).insert(data)
    with session.transaction() as tx:
        table = tx.bucket("tams").schema("s").table("t")
        assert table.select().read_all().sort_by([("n", "descending")]).equals(data)
        assert table.select(["n"], _.rate.num == 25).read_all()["n"].to_pylist() == [2]
        after = dt.datetime(2023, 11, 14, 22, 13, 20, 123456, tzinfo=dt.timezone.utc)
        assert table.select(["n"], _.ts > after).read_all()["n"].to_pylist() == [2]
