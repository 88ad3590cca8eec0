"""The VAST backend's pushdown and paging, checked without a cluster.

Every predicate `stores.vast` builds goes through the SDK's own serializer (what `Table.select` runs
before its first RPC), so a predicate shape VAST cannot push down fails here, fast. The keyset window
reader is checked on row distributions where a fixed window would go wrong.
"""

from __future__ import annotations

import itertools
import random
import uuid
from collections.abc import Callable
from typing import Any

import pyarrow as pa
import pytest
from ibis import _
from vastdb import _internal, util
from vastdb.table_metadata import TableMetadata, TableRef, TableType

from schemas.timing import INT64_MAX, INT64_MIN
from stores import vast
from stores.metadata import (
    ContextRequest,
    FlowQuery,
    Listing,
    ObjectAllocation,
    SegmentQuery,
    SourceQuery,
    TagFilter,
)
from tests.contract.conftest import add_flow, add_segments, commit, flow_doc, seconds
from tests.vast_standin import VastStandin


def serialize(table: str, predicate: Any, columns: list[str] | None = None) -> int:
    """Build the QueryData request exactly as `Table.select` does; returns its size."""
    schema = vast.SPECS[table].schema
    metadata = TableMetadata(TableRef("bucket", "schema", table), schema, TableType.Regular)
    bound = predicate.resolve(metadata.ibis_table)
    request = _internal.build_query_data_request(schema=schema, predicate=bound,
                                                 field_names=list(columns or schema.names))
    assert len(request.serialized) <= util.MAX_QUERY_DATA_REQUEST_SIZE
    return len(request.serialized)


# -- the builders, at their edges --------------------------------------------------------------------------------


@pytest.mark.parametrize("options", [
    {}, {"ends_after": INT64_MIN}, {"ends_after": 5, "object_id": "o"}, {"ends_by": INT64_MAX},
    {"ends_after": 0, "ends_by": 10, "object_id": "o"},
])
@pytest.mark.parametrize("bounds", [(0, 10), (INT64_MIN, INT64_MAX), (-5, -1)])
def test_segment_windows_are_pushable_range_tests(bounds: tuple[int, int], options: dict[str, Any]) -> None:
    serialize("segments", vast.segment_window("flow", *bounds, **options))


LISTINGS = [Listing(sort_by, reverse, after)
            for sort_by in ("created", "metadata_updated", "updated", "label") for reverse in (False, True)
            for after in ((0, -5, "id"), (1, "", "id"), (0, "text", "id"), (0, INT64_MIN, "id"), (0, 5, "id"))]


@pytest.mark.parametrize("listing", LISTINGS, ids=str)
@pytest.mark.parametrize("table, updated", [("flows", "metadata_updated_ns"), ("sources", "updated_ns")])
def test_keyset_positions_push_down_or_stay_on_our_side(listing: Listing, table: str, updated: str) -> None:
    predicate = vast.keyset_predicate(listing, updated)
    if predicate is not None:
        serialize(table, predicate)


def test_label_keysets_use_a_same_column_or() -> None:
    predicate = vast.keyset_predicate(Listing("label", False, (0, "m", "id")), "updated_ns")
    assert predicate is not None
    serialize("flows", predicate)


def test_isin_is_chunked_and_never_empty() -> None:
    ids = [str(uuid.uuid4()) for _i in range(vast.ISIN_CHUNK * 2 + 1)]
    chunks = vast.isin_chunks("id", ids + ids[:10])
    assert len(chunks) == 3
    assert vast.isin_chunks("id", []) == []
    for chunk in chunks:  # a full chunk of uuids stays under the request cap
        serialize("objects", vast.all_of(chunk, vast.eq("registered", False)))


def test_equality_with_none_is_isnull_and_booleans_serialize() -> None:
    serialize("flows", vast.all_of(vast.eq("label", None), vast.eq("read_only", True), _.tr_start_ns.isnull()))


def test_the_serializer_refuses_what_vast_cannot_push_down() -> None:
    """Guards this file's premise: the serializer is strict, so passing it means pushable."""
    refused = [(_.start_ns < 5) | (_.end_ns > 10), ~(_.flow_id == "f"), _.flow_id.isin([]),
               _.start_ns < _.end_ns, (_.start_ns + 5) < 10]
    for predicate in refused:
        with pytest.raises(NotImplementedError):
            serialize("segments", predicate)


def test_isin_of_more_values_than_a_chunk_would_be_refused_by_size() -> None:
    ids = [str(uuid.uuid4()) for _i in range(60_000)]
    with pytest.raises(AssertionError):
        serialize("objects", _.id.isin(ids))


# -- every predicate a real workload builds -------------------------------------------------------------------


@pytest.fixture
def recorded(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, Any]]:
    """(table, predicate) of every select the store makes."""
    calls: list[tuple[str, Any]] = []
    scan = vast._Tx.scan

    def recording(self: Any, name: str, columns: Any, where: Any = None, **kw: Any) -> pa.Table:
        if where is not None:
            calls.append((name, where))
        return scan(self, name, columns, where, **kw)

    monkeypatch.setattr(vast._Tx, "scan", recording)
    return calls


@pytest.mark.parametrize("vast_version", [(5, 4, 0, 0), (5, 2, 0, 0)], ids=["sorted-tables", "no-sorted-tables"])
async def test_every_predicate_of_a_full_workload_serializes(recorded: list[tuple[str, Any]],
                                                            vast_version: tuple[int, ...]) -> None:
    cluster = VastStandin(buckets=("tams",), vast_version=vast_version)
    store = vast.VastMetadataStore(session_factory=cluster.connect, bucket="tams", schema="predicates")
    await store.open()
    try:
        await _workload(store)
    finally:
        await store.close()
    for table, predicate in recorded:
        serialize(table, predicate)
    touched = {table for table, _p in recorded}
    assert touched >= {"flows", "sources", "segments", "objects", "object_uses", "tags", "flow_members",
                       "applied_events", "profiles", "deletion_requests", "service_info", "object_instances"}


async def _workload(store: vast.VastMetadataStore) -> None:
    """Calls every store method with the argument shapes that change what it pushes down."""
    source = str(uuid.uuid4())
    member = await add_flow(store, source_id=source, tags={"genre": ["news", "sport"], "empty": []}, label="m")
    collection = flow_doc(format="urn:x-nmos:format:multi", flow_collection=[{"id": member, "role": "r"}])
    await store.put_flow(collection, 10)
    await store.get_flow(member)
    await store.commit_segments([commit(member, [seconds(0, 1, "o1"), seconds(1, 2, "o2", init_object_id="i1"),
                                                 seconds(2, 3, "o3")], event_ids=["e1"])])
    for listing in LISTINGS + [Listing()]:
        if listing.sort_by != "updated":
            await store.list_flows(FlowQuery(listing=listing, limit=2))
        if listing.sort_by != "metadata_updated":
            await store.list_sources(SourceQuery(listing=listing, limit=2))
    await store.list_flows(FlowQuery(
        source_id=source, format="urn:x-nmos:format:video", codec="video/h264", label="m", status="s",
        frame_width=1920, frame_height=1080, init_segments=False, profile_id="p", collected_by_ids=(collection["id"],),
        tags=TagFilter({"genre": ("news", "x")}, {"empty": True, "other": False}), overlapping=(0, 10)))
    await store.list_flows(FlowQuery(collected_by_ids=(), empty_only=True))
    await store.list_sources(SourceQuery(collected_by_ids=(source,), format="f", label="l",
                                         tags=TagFilter({"a": ("b",)}, {"c": False})))
    await store.list_sources(SourceQuery(collected_by_ids=()))
    await store.put_source({"id": source, "format": "urn:x-nmos:format:video", "tags": {"a": "b"}}, 20)
    await store.get_source(source)
    await store.create_profile({"id": "p", "flow_metadata": {"format": "f", "codec": "c"}, "label": "l"}, 1)
    await store.get_profile("p")
    await store.list_profiles(format="f", codec="c", label="l", after_id="a", limit=5)
    await store.list_profiles(format=None, codec=None, label=None, after_id=None, limit=5)
    for _i in range(2):
        await store.put_deletion_request({"id": "d", "flow_id": member}, 1)
        await store.put_service_info({"name": "n"})
    await store.get_deletion_request("d")
    await store.list_deletion_requests(after_id=None, limit=5)
    await store.get_service_info()
    await store.allocate_objects([ObjectAllocation("a1", "st", member, None, 1)])
    await store.get_objects(["a1", "o1"])
    await store.expired_allocations(5, 10)
    await store.add_controlled_copy("o1", "st2")
    await store.remove_controlled_copy("o1", "st2")
    await store.object_references("o1", after_flow=None, limit=5, flow_tags=TagFilter({"genre": ("news",)}))
    await store.add_uncontrolled_instances("o1", [("x", "https://x")])
    await store.uncontrolled_instances(["o1"])
    await store.remove_uncontrolled_instance("o1", "x")
    await store.drop_allocations(["a1"])
    await store.applied_event_ids(member, ["e1"])
    await store.segment_context([ContextRequest(member, {"e1"}, {"o1", "i1"}, (0, 10**9)),
                                 ContextRequest(str(uuid.uuid4()), set(), set(), None)])
    for reverse, object_id, after in itertools.product((False, True), (None, "o1"), (None, 10**9)):
        await store.list_segments(SegmentQuery(member, INT64_MIN, INT64_MAX, object_id, reverse, 1, after))
    await store.list_segments(SegmentQuery(member, 10**9, 5 * 10**9, limit=1))
    await store.delete_segments(member, 0, 2 * 10**9, "o2", 30, limit=1)
    await store.delete_segments(member, INT64_MIN, INT64_MAX, None, 30, limit=None)
    await add_segments(store, member, [seconds(0, 1, "o9")])
    await store.delete_flow(member)


# -- ordered reads in windows ----------------------------------------------------------------------------------

Fetch = Callable[[int, int, int | None], tuple[pa.Table, bool]]


def server(starts: list[int], seed: int = 0) -> tuple[Fetch, list[tuple[int, int]]]:
    """A fetch that answers like VAST: rows in no order, and `cap` arbitrary rows when there are more."""
    rng = random.Random(seed)
    calls: list[tuple[int, int]] = []

    def fetch(lo: int, hi: int, cap: int | None) -> tuple[pa.Table, bool]:
        calls.append((lo, hi))
        rows = [s for s in starts if lo <= s < hi]
        rng.shuffle(rows)
        truncated = cap is not None and len(rows) >= cap
        return pa.table({"start_ns": pa.array(rows[:cap], pa.int64())}), truncated

    return fetch, calls


def read(starts: list[int], want: int, *, reverse: bool = False, lo: int | None = None,
         hi: int | None = None) -> tuple[list[int], list[tuple[int, int]]]:
    fetch, calls = server(starts)
    lo = min(starts) if lo is None else lo
    hi = max(starts) + 1 if hi is None else hi
    width = vast.window_width((min(starts), max(starts) + 1), len(starts), want)
    rows = vast.read_ordered(fetch, lo=lo, hi=hi, want=want, width=width, reverse=reverse)
    return [r["start_ns"] for r in rows], calls


def test_uniform_rows_come_in_order_from_one_or_two_windows() -> None:
    starts = list(range(0, 100_000, 10))
    got, calls = read(starts, 101)
    assert got == starts[:101]
    assert len(calls) <= 2


def test_paging_through_a_uniform_flow_visits_every_row_once_both_ways() -> None:
    starts = list(range(0, 5_000, 5))
    for reverse in (False, True):
        seen: list[int] = []
        cursor: int | None = None
        while True:
            lo, hi = (0, 5_000) if cursor is None else ((0, cursor) if reverse else (cursor + 1, 5_000))
            page, _calls = read(starts, 101, reverse=reverse, lo=lo, hi=hi)
            seen += page[:100]
            if len(page) <= 100:
                break
            cursor = page[99]
        assert seen == sorted(starts, reverse=reverse)


def test_one_huge_gap_is_crossed_by_doubling_in_few_reads() -> None:
    starts = list(range(100)) + [10**15 + i for i in range(100)]
    got, calls = read(starts, 150)
    assert got == starts[:150]
    assert len(calls) <= 64  # doubling: about log2(gap / first width) windows


def test_reverse_order_returns_the_last_rows_descending() -> None:
    starts = [i * i for i in range(500)]  # spacing grows: the last rows are sparser than the average says
    got, _calls = read(starts, 50, reverse=True)
    assert got == sorted(starts, reverse=True)[:50]


def test_a_burst_denser_than_the_cap_is_reread_in_narrower_windows() -> None:
    starts = [i * 10**9 for i in range(10)] + [5 * 10**9 + i for i in range(1, 5_000)]
    got, calls = read(starts, 20)
    assert got == sorted(starts)[:20]
    assert any(hi - lo < 10**9 for lo, hi in calls)


def test_fewer_rows_than_wanted_reads_up_to_the_end_and_stops() -> None:
    got, calls = read([3, 1, 2], 10)
    assert got == [1, 2, 3]
    assert calls[-1][1] == 4


def test_an_empty_range_reads_nothing() -> None:
    fetch, calls = server([1, 2, 3])
    assert vast.read_ordered(fetch, lo=5, hi=5, want=10, width=1) == []
    assert calls == []
