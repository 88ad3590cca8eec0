"""Segment reads: timerange overlap with every clusivity, the longest-segment bound, keyset paging."""

from __future__ import annotations

import pytest

from schemas.timing import INT64_MAX, INT64_MIN, TimeRange
from stores.metadata import MetadataStore, SegmentQuery, StoredSegment
from tests.contract.conftest import (
    S,
    add_flow,
    add_segments,
    all_segments,
    ns,
    seconds,
    segment,
    span,
    spans,
)

# A flow laid out across zero, with an instantaneous segment and a gap:
#   A [-2:0_-1:0)  B [-1:0_0:0)  C [0:0_1:0)  D [1:0_2:0)  E [2:0]  (gap)  F [3:0_4:0)
LAYOUT = {
    "A": (-2 * S, -1 * S), "B": (-1 * S, 0), "C": (0, 1 * S), "D": (1 * S, 2 * S), "E": (2 * S, 2 * S + 1),
    "F": (3 * S, 4 * S),
}


async def layout_flow(store: MetadataStore) -> str:
    flow_id = await add_flow(store)
    # committed out of order, in two batches: the store orders them
    await add_segments(store, flow_id, [segment(*LAYOUT[k]) for k in "FCA"])
    await add_segments(store, flow_id, [segment(*LAYOUT[k]) for k in "EBD"])
    return flow_id


async def check_queries(store: MetadataStore, cases: dict[str, str]) -> None:
    """Each timerange query returns exactly the named segments, ascending, and descending when reversed."""
    flow_id = await layout_flow(store)
    wrong = {}
    for query, expected in cases.items():
        want = [LAYOUT[k] for k in expected]
        forward = spans(await all_segments(store, flow_id, query))
        backward = spans(await all_segments(store, flow_id, query, reverse=True))
        if forward != want or backward != want[::-1]:
            got = "".join(k for k, v in LAYOUT.items() if v in forward) or "-"
            wrong[query] = f"expected {expected or '-'}, got {got} (reverse {len(backward)} segments)"
    assert not wrong, wrong


async def test_inclusive_and_exclusive_bounds_select_exactly_the_segments_holding_an_instant(
        store: MetadataStore) -> None:
    await check_queries(store, {
        "[0:0_1:0)": "C",
        "[0:0_1:0]": "CD",
        "(0:0_1:0)": "C",
        "(0:0_1:0]": "CD",
        "[1:0_2:0)": "D",
        "[1:0_2:0]": "DE",
        "(1:0_2:0)": "D",
        "(0:999999999_2:1)": "DE",
    })


async def test_segments_touching_the_query_boundary_exactly_are_in_or_out_by_its_clusivity(
        store: MetadataStore) -> None:
    await check_queries(store, {
        "[1:0_1:500000000)": "D",  # C ends at 1:0 exclusive: touching from the left is not overlapping
        "(0:500000000_1:0)": "C",  # D starts at 1:0: an exclusive end there does not reach it
        "(0:500000000_1:0]": "CD",
        "(1:0_1:500000000)": "D",  # an exclusive start at a segment start still overlaps the segment's rest
        "[2:0_3:0)": "E",
        "(2:0_3:0)": "",  # E is the single instant 2:0; F starts at 3:0
        "[2:0_3:0]": "EF",
        "[4:0_5:0)": "",  # F ends at 4:0 exclusive
        "[3:999999999_5:0)": "F",
    })


async def test_instantaneous_queries_and_instantaneous_segments_overlap_only_at_their_instant(
        store: MetadataStore) -> None:
    await check_queries(store, {
        "[0:0]": "C",
        "[1:0]": "D",
        "[2:0]": "E",
        "[2:1]": "",
        "[1:999999999]": "D",
        "[-1:0]": "B",
        "(0:0_0:2)": "C",  # holds only 0:1
        "[1:999999999_2:0]": "DE",
        "(1:999999999_2:1)": "E",
    })


async def test_eternity_and_unbounded_sides_reach_the_ends_of_the_timeline(store: MetadataStore) -> None:
    await check_queries(store, {
        "_": "ABCDEF",
        "_0:0)": "AB",
        "_0:0]": "ABC",
        "_-2:0)": "",
        "_-2:0]": "A",
        "[3:500000000_": "F",
        "(1:0_": "DEF",
        "[2:1_": "F",
        "[4:0_": "",
        "(3:999999999_": "",
        "[3:999999999_": "F",
        "[-100:0_100:0]": "ABCDEF",
    })


async def test_negative_times_and_nanosecond_bounds_are_exact(store: MetadataStore) -> None:
    await check_queries(store, {
        "[-2:0_-1:0)": "A",
        "(-2:0_-1:0)": "A",
        "[-1:0_0:0)": "B",
        "(-1:0_0:0]": "BC",
        "[-0:1_0:0)": "B",  # the last nanosecond before zero
        "[-0:1]": "B",
        "[-0:1_0:1)": "BC",
        "(-1:999999999_-1:0)": "A",
        "[-1:0_-0:999999999]": "B",
        "[-1:999999999]": "A",  # -1.999999999 s
        "[-2:1]": "",  # -2.000000001 s: the sign applies to the whole value, so this is before A
        "[0:999999999_1:0)": "C",
        "[0:999999999_1:1)": "CD",
        "(0:999999999_1:1)": "D",
    })


async def test_segments_come_back_exactly_as_stored(store: MetadataStore) -> None:
    flow_id = await add_flow(store)
    init = "init-object"
    stored = segment(10 * S, 11 * S, "obj-1", init_object_id=init, ts_offset=5 * S, key_frame_count=3,
                     object_timerange="[5:0_6:0)")
    plain = segment(11 * S, 12 * S + 123, "obj-2")
    await add_segments(store, flow_id, [stored, plain])
    got = await all_segments(store, flow_id)
    assert got == [stored, plain]
    assert isinstance(got[0].doc, bytes)
    assert got[1].init_object_id is None


async def test_segments_of_other_flows_are_never_returned(store: MetadataStore) -> None:
    flow_id, other = await add_flow(store), await add_flow(store)
    mine = await add_segments(store, flow_id, [seconds(0, 1), seconds(5, 6)])
    await add_segments(store, other, [seconds(1, 2), seconds(2, 3), seconds(5.5, 7)])
    assert await all_segments(store, flow_id) == mine
    assert await all_segments(store, flow_id, "[1:0_5:0)") == []


async def test_object_id_filter_returns_only_segments_using_that_object(store: MetadataStore) -> None:
    flow_id = await add_flow(store)
    shared = "shared-object"
    segs = [seconds(i, i + 1, shared if i % 3 == 0 else None, ts_offset=i * S if i % 3 == 0 else None)
            for i in range(10)]
    await add_segments(store, flow_id, segs)
    expected = [s for s in segs if s.object_id == shared]
    assert await all_segments(store, flow_id, object_id=shared) == expected
    assert await all_segments(store, flow_id, object_id=shared, reverse=True) == expected[::-1]
    assert await all_segments(store, flow_id, "[2:0_7:0)", object_id=shared) == expected[1:3]
    assert await all_segments(store, flow_id, object_id="no-such-object") == []


# -------------------------------------------------------------------------------------------- longest segment


async def test_a_long_segment_far_before_the_window_is_still_found(store: MetadataStore) -> None:
    flow_id = await add_flow(store)
    long = seconds(0, 1000)
    shorts = [seconds(1000 + i, 1001 + i) for i in range(10)]
    await add_segments(store, flow_id, [long, *shorts])
    assert await all_segments(store, flow_id, "[500:0_501:0)") == [long]
    assert await all_segments(store, flow_id, "[999:999999999]") == [long]
    assert await all_segments(store, flow_id, "[999:0_1001:0)") == [long, shorts[0]]
    assert await all_segments(store, flow_id, "[999:0_1001:0)", reverse=True) == [shorts[0], long]
    assert await all_segments(store, flow_id, "[1000:0]") == [shorts[0]]
    page = await store.list_segments(SegmentQuery(flow_id, *span("[500:0_1005:0)"), reverse=True, limit=1,
                                                  after_start_ns=shorts[0].start_ns))
    assert page.segments == [long] and not page.more


async def test_a_long_segment_committed_later_raises_the_bound_for_earlier_short_ones(store: MetadataStore) -> None:
    flow_id = await add_flow(store)
    shorts = await add_segments(store, flow_id, [seconds(100 + i, 101 + i) for i in range(5)])
    long = (await add_segments(store, flow_id, [seconds(-5000, 0)]))[0]
    assert (await store.get_flow(flow_id)).max_segment_ns >= 5000 * S
    assert await all_segments(store, flow_id, "[-1:0]") == [long]
    assert await all_segments(store, flow_id, "[-1:0_101:0)") == [long, shorts[0]]
    assert await all_segments(store, flow_id, "_-4000:0)") == [long]


async def test_the_bound_comes_from_the_flow_itself_not_from_other_flows(store: MetadataStore) -> None:
    flow_id, other = await add_flow(store), await add_flow(store)
    await add_segments(store, other, [seconds(0, 1)])
    long = (await add_segments(store, flow_id, [seconds(0, 3600)]))[0]
    await add_segments(store, other, [seconds(1, 2)])  # later commits to another flow do not lower it
    assert await all_segments(store, flow_id, "[3599:0]") == [long]


# -------------------------------------------------------------------------------------------- paging


def irregular_segments() -> list[StoredSegment]:
    """42 segments of varied length: a negative run, gaps, and a gap of a million seconds in the middle."""
    out, t = [], -20 * S
    for i in range(42):
        length = (1 + i % 3) * S // 2 + i
        if i == 21:
            t += 1_000_000 * S
        elif i % 5 == 0:
            t += 7 * S // 3
        out.append(segment(t, t + length, ts_offset=i))
        t += length
    return out


async def irregular_flow(store: MetadataStore) -> tuple[str, list[StoredSegment]]:
    flow_id = await add_flow(store)
    segs = irregular_segments()
    for batch in (segs[30:], segs[:10], segs[10:30]):  # out of order
        await add_segments(store, flow_id, batch)
    return flow_id, segs


async def page_through(store: MetadataStore, query: SegmentQuery) -> list[tuple[list[StoredSegment], bool]]:
    """Follow the keyset cursor (the last start of each page) until `more` is False."""
    pages: list[tuple[list[StoredSegment], bool]] = []
    cursor = None
    while True:
        page = await store.list_segments(SegmentQuery(query.flow_id, query.start_ns, query.end_ns, query.object_id,
                                                      query.reverse, query.limit, cursor))
        pages.append((page.segments, page.more))
        assert len(pages) <= 100, "paging does not end"
        if not page.more:
            return pages
        assert page.segments, "an empty page claims there is more"
        cursor = page.segments[-1].start_ns


@pytest.mark.parametrize("reverse", [False, True], ids=["forward", "reverse"])
async def test_keyset_paging_yields_the_full_sorted_set_once(store: MetadataStore, reverse: bool) -> None:
    flow_id, segs = await irregular_flow(store)
    expected = segs[::-1] if reverse else segs
    pages = await page_through(store, SegmentQuery(flow_id, *span("_"), reverse=reverse, limit=7))
    assert [s for page, _ in pages for s in page] == expected
    assert [len(page) for page, _ in pages] == [7] * 6  # 42 = 6 full pages: the last one says no more
    assert [more for _, more in pages] == [True] * 5 + [False]
    pages = await page_through(store, SegmentQuery(flow_id, *span("_"), reverse=reverse, limit=5))
    assert [s for page, _ in pages for s in page] == expected
    assert [len(page) for page, _ in pages] == [5] * 8 + [2]


@pytest.mark.parametrize("reverse", [False, True], ids=["forward", "reverse"])
async def test_keyset_paging_within_a_window_starts_and_ends_with_the_segments_overlapping_its_edges(
        store: MetadataStore, reverse: bool) -> None:
    flow_id, segs = await irregular_flow(store)
    lo, hi = segs[3].start_ns + 1, segs[38].end_ns - 1  # inside the 4th and the 39th segment
    expected = segs[3:39][::-1] if reverse else segs[3:39]
    pages = await page_through(store, SegmentQuery(flow_id, lo, hi, reverse=reverse, limit=4))
    assert [s for page, _ in pages for s in page] == expected
    assert all(len(page) == 4 for page, _ in pages[:-1]) and not pages[-1][1]


@pytest.mark.parametrize("reverse", [False, True], ids=["forward", "reverse"])
async def test_keyset_paging_with_an_object_filter_pages_only_that_objects_segments(
        store: MetadataStore, reverse: bool) -> None:
    flow_id = await add_flow(store)
    shared = "shared"
    segs = [seconds(i * 2, i * 2 + 1, shared if i % 4 != 1 else None) for i in range(30)]
    await add_segments(store, flow_id, segs)
    expected = [s for s in segs if s.object_id == shared]
    expected = expected[::-1] if reverse else expected
    pages = await page_through(store, SegmentQuery(flow_id, *span("_"), object_id=shared, reverse=reverse, limit=6))
    assert [s for page, _ in pages for s in page] == expected
    assert [len(page) for page, _ in pages] == [6, 6, 6, 4]


@pytest.mark.parametrize("reverse", [False, True], ids=["forward", "reverse"])
async def test_keyset_paging_through_a_dense_cluster_among_sparse_long_segments(store: MetadataStore,
                                                                                reverse: bool) -> None:
    flow_id = await add_flow(store)
    hour, year = 3600 * S, 365 * 24 * 3600 * S
    sparse_before = [segment(-year + k * 30 * hour, -year + k * 30 * hour + hour) for k in range(3)]
    dense = [segment(k, k + 1) for k in range(30)]  # thirty one-nanosecond segments
    sparse_after = [segment(k * 40 * hour, k * 40 * hour + hour) for k in range(1, 4)]
    await add_segments(store, flow_id, sparse_after + dense)
    await add_segments(store, flow_id, sparse_before)
    everything = sparse_before + dense + sparse_after
    for lo, hi, expected in [(INT64_MIN, INT64_MAX, everything), (12, INT64_MAX, dense[12:] + sparse_after),
                             (-year, 5, sparse_before + dense[:5])]:
        want = expected[::-1] if reverse else expected
        pages = await page_through(store, SegmentQuery(flow_id, lo, hi, reverse=reverse, limit=4))
        assert [s for page, _ in pages for s in page] == want, (lo, hi)


async def test_a_page_past_the_last_segment_is_empty_and_has_no_more(store: MetadataStore) -> None:
    flow_id = await add_flow(store)
    segs = await add_segments(store, flow_id, [seconds(i, i + 1) for i in range(3)])
    page = await store.list_segments(SegmentQuery(flow_id, *span("_"), limit=3))
    assert page.segments == segs and not page.more
    page = await store.list_segments(SegmentQuery(flow_id, *span("_"), limit=10, after_start_ns=segs[-1].start_ns))
    assert page.segments == [] and not page.more
    page = await store.list_segments(SegmentQuery(flow_id, *span("_"), limit=10, reverse=True,
                                                  after_start_ns=segs[0].start_ns))
    assert page.segments == [] and not page.more
    page = await store.list_segments(SegmentQuery(flow_id, *span("_"), limit=1, after_start_ns=segs[0].start_ns))
    assert page.segments == [segs[1]] and page.more


async def test_nanosecond_starts_page_without_rounding(store: MetadataStore) -> None:
    flow_id = await add_flow(store)
    base = ns("1700000000:999999990")
    segs = await add_segments(store, flow_id, [segment(base + i, base + i + 1) for i in range(20)])
    pages = await page_through(store, SegmentQuery(flow_id, *span("_"), limit=3))
    assert [s for page, _ in pages for s in page] == segs
    assert await all_segments(store, flow_id, "[1700000000:999999995_1700000001:1)") == segs[5:11]


async def test_times_at_the_edges_of_int64_are_stored_queried_and_paged(store: MetadataStore) -> None:
    flow_id = await add_flow(store)
    lowest = segment(INT64_MIN + 1, INT64_MIN + 1 + S)
    long = segment(-5 * 10**18, 4 * 10**18)  # 285 years: the longest-segment bound must not overflow int64
    highest = segment(INT64_MAX - 1 - S, INT64_MAX - 1)
    await add_segments(store, flow_id, [highest, lowest])
    await add_segments(store, flow_id, [long])
    assert await all_segments(store, flow_id) == [lowest, long, highest]
    assert await all_segments(store, flow_id, reverse=True) == [highest, long, lowest]
    assert await all_segments(store, flow_id, str(TimeRange.instant(INT64_MIN + 1))) == [lowest]
    assert await all_segments(store, flow_id, str(TimeRange.instant(-3 * 10**18))) == [long]
    assert await all_segments(store, flow_id, str(TimeRange.instant(INT64_MIN // 2 + 1))) == [long]
    assert await all_segments(store, flow_id, str(TimeRange(INT64_MAX - 3, None, True, False))) == [highest]
    pages = await page_through(store, SegmentQuery(flow_id, INT64_MIN, INT64_MAX, limit=1))
    assert [s for page, _ in pages for s in page] == [lowest, long, highest]
    record = await store.get_flow(flow_id)
    assert (record.extent, record.segment_count) == ((INT64_MIN + 1, INT64_MAX - 1), 3)
    deletion = await store.delete_segments(flow_id, INT64_MIN, INT64_MAX, None, 5_000)
    assert (deletion.segments, deletion.span) == (3, (INT64_MIN + 1, INT64_MAX - 1))
