"""Flow and source listings: every filter of FlowQuery and SourceQuery, every sort, keyset paging."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import pytest

from stores.metadata import (
    FlowQuery,
    FlowRecord,
    Listing,
    MetadataStore,
    SortKey,
    SourceQuery,
    SourceRecord,
    TagFilter,
    sort_key,
)
from tests.contract.conftest import (
    AUDIO,
    DATA,
    MULTI,
    VIDEO,
    add_flow,
    add_segments,
    flow_doc,
    ordered_id,
    seconds,
    span,
)

PROFILE = "7a1c0de5-0000-4000-8000-000000000001"
ODD_TAG = "it's \"odd\""


@dataclass
class Corpus:
    flows: dict[str, str]  # name -> flow id
    sources: dict[str, str]  # name -> source id

    def flow_names(self, records: Sequence[FlowRecord]) -> set[str]:
        by_id = {v: k for k, v in self.flows.items()}
        return {by_id.get(r.id, r.id) for r in records}

    def source_names(self, records: Sequence[SourceRecord]) -> set[str]:
        by_id = {v: k for k, v in self.sources.items()}
        return {by_id.get(r.doc["id"], r.doc["id"]) for r in records}


async def corpus(store: MetadataStore) -> Corpus:
    """v1, v2 (video), a1 (audio), d1 (data) and m1 (multi, collecting v1 and a1), each on its own source."""
    sources = {name: ordered_id(100 + i) for i, name in enumerate(("S1", "S2", "S3", "S4", "S5"))}
    flows = {name: ordered_id(i) for i, name in enumerate(("v1", "v2", "a1", "d1", "m1"))}
    await store.put_flow(flow_doc(flows["v1"], sources["S1"], label="news", status="ingesting",
                                  tags={"genre": ["news", "sport"], "lang": "en"}), 1_000)
    v2 = flow_doc(flows["v2"], sources["S2"], label="sport", status="closed_complete", codec="video/h265",
                  tags={"genre": "sport"}, profile_id=PROFILE)
    v2["essence_parameters"] = {"frame_width": 1280, "frame_height": 720, "init_segments": True}
    await store.put_flow(v2, 2_000)
    await store.put_flow(flow_doc(flows["a1"], sources["S3"], format=AUDIO, label="news",
                                  tags={"lang": "fr", "x.y": "dot"}), 3_000)
    d1 = flow_doc(flows["d1"], sources["S4"], format=DATA, tags={"empty": [], ODD_TAG: "50%_off"})
    d1["essence_parameters"] = {"init_segments": False}
    await store.put_flow(d1, 4_000)
    await store.put_flow({"id": flows["m1"], "source_id": sources["S5"], "format": MULTI, "label": "package",
                          "flow_collection": [{"id": flows["v1"], "role": "video"},
                                              {"id": flows["a1"], "role": "audio"}]}, 5_000)
    return Corpus(flows, sources)


Cases = dict[str, tuple[dict[str, Any], set[str]]]


def mismatches(results: dict[str, tuple[set[str], set[str]]]) -> dict[str, str]:
    """The cases whose (got, expected) differ, readable."""
    return {case: f"got {sorted(got)}, expected {sorted(want)}" for case, (got, want) in results.items()
            if got != want}


async def check_flow_filters(store: MetadataStore, cases: Cases) -> None:
    c = await corpus(store)
    results = {case: (c.flow_names(await store.list_flows(FlowQuery(**fields))), expected)
               for case, (fields, expected) in cases.items()}
    assert not mismatches(results)


async def test_each_flow_column_filter_selects_exactly_the_flows_it_describes(store: MetadataStore) -> None:
    await check_flow_filters(store, {
        "no filter": ({}, {"v1", "v2", "a1", "d1", "m1"}),
        "source_id": ({"source_id": ordered_id(101)}, {"v2"}),
        "source_id unknown": ({"source_id": ordered_id(999)}, set()),
        "format": ({"format": VIDEO}, {"v1", "v2"}),
        "format audio": ({"format": AUDIO}, {"a1"}),
        "codec": ({"codec": "video/h264"}, {"v1"}),
        "label": ({"label": "news"}, {"v1", "a1"}),
        "label is matched whole": ({"label": "new"}, set()),
        "status": ({"status": "ingesting"}, {"v1"}),
        "status other": ({"status": "closed_complete"}, {"v2"}),
        "frame_width": ({"frame_width": 1920}, {"v1"}),
        "frame_height": ({"frame_height": 720}, {"v2"}),
        "frame_width and frame_height both hold": ({"frame_width": 1920, "frame_height": 720}, set()),
        "init_segments true": ({"init_segments": True}, {"v2"}),
        "init_segments false includes flows without it": ({"init_segments": False}, {"v1", "a1", "d1", "m1"}),
        "profile_id": ({"profile_id": PROFILE}, {"v2"}),
        "filters are ANDed": ({"format": VIDEO, "label": "news"}, {"v1"}),
        "filters are ANDed, none left": ({"format": AUDIO, "codec": "video/h264"}, set()),
    })


async def test_collected_by_ids_selects_members_and_empty_selects_flows_no_collection_lists(
        store: MetadataStore) -> None:
    await check_flow_filters(store, {
        "one collection": ({"collected_by_ids": (ordered_id(4),)}, {"v1", "a1"}),
        "any of several": ({"collected_by_ids": (ordered_id(999), ordered_id(4))}, {"v1", "a1"}),
        "unknown collection": ({"collected_by_ids": (ordered_id(999),)}, set()),
        "empty: collected by nothing": ({"collected_by_ids": ()}, {"v2", "d1", "m1"}),
        "with another filter": ({"collected_by_ids": (ordered_id(4),), "format": AUDIO}, {"a1"}),
    })


async def test_tag_filters_match_any_listed_value_any_array_element_and_presence(store: MetadataStore) -> None:
    await check_flow_filters(store, {
        "string value": ({"tags": TagFilter({"lang": ("en",)})}, {"v1"}),
        "any listed value": ({"tags": TagFilter({"lang": ("de", "fr", "en")})}, {"v1", "a1"}),
        "any array element": ({"tags": TagFilter({"genre": ("sport",)})}, {"v1", "v2"}),
        "array element, any of": ({"tags": TagFilter({"genre": ("drama", "news")})}, {"v1"}),
        "whole values only": ({"tags": TagFilter({"genre": ("spor",)})}, set()),
        "an array is not a value": ({"tags": TagFilter({"genre": ('["news","sport"]', "news,sport")})}, set()),
        "every named tag must hold": ({"tags": TagFilter({"genre": ("sport",), "lang": ("en",)})}, {"v1"}),
        "name with a dot": ({"tags": TagFilter({"x.y": ("dot",)})}, {"a1"}),
        "a name prefix is not a path": ({"tags": TagFilter({"x": ("dot",)})}, set()),
        "name and value with quotes and wildcards": ({"tags": TagFilter({ODD_TAG: ("50%_off",)})}, {"d1"}),
        "wildcards are literal": ({"tags": TagFilter({ODD_TAG: ("50%", "50__off")})}, set()),
        "exists, name with quotes": ({"tags": TagFilter(exists={ODD_TAG: True})}, {"d1"}),
        "exists": ({"tags": TagFilter(exists={"genre": True})}, {"v1", "v2"}),
        "exists with an empty array": ({"tags": TagFilter(exists={"empty": True})}, {"d1"}),
        "an empty array has no values": ({"tags": TagFilter({"empty": ("",)})}, set()),
        "does not exist": ({"tags": TagFilter(exists={"genre": False})}, {"a1", "d1", "m1"}),
        "value and absence": ({"tags": TagFilter({"lang": ("en", "fr")}, {"genre": False})}, {"a1"}),
        "presence and absence": ({"tags": TagFilter(exists={"genre": True, "lang": False})}, {"v2"}),
        "with another filter": ({"format": VIDEO, "tags": TagFilter(exists={"lang": True})}, {"v1"}),
    })


async def test_flows_overlapping_a_window_are_those_whose_segments_reach_into_it(store: MetadataStore) -> None:
    empty, f1, f2, f3 = [await add_flow(store) for _ in range(4)]
    names = {empty: "empty", f1: "f1", f2: "f2", f3: "f3"}
    await add_segments(store, f1, [seconds(0, 5), seconds(5, 10)])
    await add_segments(store, f2, [seconds(20, 30)])
    await add_segments(store, f3, [seconds(-10, -5)])

    async def overlapping(timerange: str) -> set[str]:
        return {names[r.id] for r in await store.list_flows(FlowQuery(overlapping=span(timerange)))}

    assert await overlapping("[5:0_6:0)") == {"f1"}
    assert await overlapping("[10:0_20:0)") == set()  # f1 ends at 10:0 exclusive, f2 starts at 20:0
    assert await overlapping("[10:0_20:0]") == {"f2"}
    assert await overlapping("[9:999999999_10:0)") == {"f1"}
    assert await overlapping("_0:0)") == {"f3"}
    assert await overlapping("[-5:0_") == {"f1", "f2"}
    assert await overlapping("_") == {"f1", "f2", "f3"}
    assert {names[r.id] for r in await store.list_flows(FlowQuery(empty_only=True))} == {"empty"}
    assert {names[r.id] for r in await store.list_flows(FlowQuery(overlapping=span("[0:0_30:0)"),
                                                                  label="none has it"))} == set()


async def test_a_flow_whose_segments_are_all_deleted_lists_as_empty_again(store: MetadataStore) -> None:
    flow_id, other = await add_flow(store), await add_flow(store)
    await add_segments(store, flow_id, [seconds(0, 1)])
    await add_segments(store, other, [seconds(0, 1)])
    await store.delete_segments(flow_id, *span("_"), None, 3_000)
    assert [r.id for r in await store.list_flows(FlowQuery(empty_only=True))] == [flow_id]
    assert [r.id for r in await store.list_flows(FlowQuery(overlapping=span("_")))] == [other]


async def test_list_flows_returns_at_most_limit_flows(store: MetadataStore) -> None:
    for _ in range(5):
        await add_flow(store)
    assert len(await store.list_flows(FlowQuery(limit=3))) == 3
    assert len(await store.list_flows(FlowQuery(limit=10))) == 5


async def test_each_source_filter_selects_exactly_the_sources_it_describes(store: MetadataStore) -> None:
    c = await corpus(store)
    s1, s2 = await store.get_source(c.sources["S1"]), await store.get_source(c.sources["S2"])
    await store.put_source({**s1.doc, "label": "camera 1", "tags": {"crew": ["ann", "bob"]}}, 6_000)
    await store.put_source({**s2.doc, "label": "camera 2", "tags": {"crew": ["ann"], "site": "studio b"}}, 6_000)
    cases: Cases = {
        "no filter": ({}, {"S1", "S2", "S3", "S4", "S5"}),
        "format": ({"format": VIDEO}, {"S1", "S2"}),
        "label": ({"label": "camera 1"}, {"S1"}),
        "collected_by_ids": ({"collected_by_ids": (ordered_id(104),)}, {"S1", "S3"}),
        "collected_by_ids, any of": ({"collected_by_ids": (ordered_id(104), ordered_id(999))}, {"S1", "S3"}),
        "collected_by_ids empty: top-level sources": ({"collected_by_ids": ()}, {"S2", "S4", "S5"}),
        "tag value": ({"tags": TagFilter({"site": ("studio b",)})}, {"S2"}),
        "tag, any array element": ({"tags": TagFilter({"crew": ("ann",)})}, {"S1", "S2"}),
        "tag, any listed value": ({"tags": TagFilter({"crew": ("zed", "bob")})}, {"S1"}),
        "tag exists": ({"tags": TagFilter(exists={"crew": True})}, {"S1", "S2"}),
        "tag does not exist": ({"tags": TagFilter(exists={"crew": False})}, {"S3", "S4", "S5"}),
        "filters are ANDed": ({"format": VIDEO, "tags": TagFilter({"crew": ("ann",)}), "label": "camera 1"}, {"S1"}),
    }
    results = {case: (c.source_names(await store.list_sources(SourceQuery(**fields))), expected)
               for case, (fields, expected) in cases.items()}
    assert not mismatches(results)


# -------------------------------------------------------------------------------------------- sorting and paging


@dataclass
class Kind:
    """Flows or sources, behind one interface, so every sort and paging test runs on both."""

    name: str
    updated_sort: str

    def ident(self, n: int) -> str:
        return ordered_id(n) if self.name == "flows" else ordered_id(1000 + n)

    async def create(self, store: MetadataStore, n: int, created: int, label: str | None) -> None:
        doc = flow_doc(ordered_id(n), ordered_id(1000 + n))
        if self.name == "flows":
            await store.put_flow(doc | ({"label": label} if label is not None else {}), created)
        else:
            await store.put_flow(doc, created)
            source = (await store.get_source(ordered_id(1000 + n))).doc
            await store.put_source(source | ({"label": label} if label is not None else {}), created)

    async def touch(self, store: MetadataStore, n: int, when: int) -> None:
        if self.name == "flows":
            flow = (await store.get_flow(ordered_id(n))).doc
            await store.put_flow({**flow, "description": f"edited at {when}"}, when)
        else:
            source = (await store.get_source(ordered_id(1000 + n))).doc
            await store.put_source({**source, "description": f"edited at {when}"}, when)

    async def page(self, store: MetadataStore, listing: Listing, limit: int) -> list[tuple[str, SortKey]]:
        """(id, sort key) of each item of one page; the key is what the API turns into the next page token."""
        if self.name == "flows":
            flows = await store.list_flows(FlowQuery(limit=limit, listing=listing))
            return [(r.id, sort_key(listing.sort_by, r.id, r.created_ns, r.metadata_updated_ns, r.doc.get("label")))
                    for r in flows]
        sources = await store.list_sources(SourceQuery(limit=limit, listing=listing))
        return [(r.doc["id"], sort_key(listing.sort_by, r.doc["id"], r.created_ns, r.updated_ns, r.doc.get("label")))
                for r in sources]

    async def page_through(self, store: MetadataStore, sort_by: str, reverse: bool, limit: int,
                           between_pages: Any = None) -> list[tuple[str, SortKey]]:
        seen: list[tuple[str, SortKey]] = []
        after: SortKey | None = None
        for _ in range(30):
            page = await self.page(store, Listing(sort_by=sort_by, reverse=reverse, after=after), limit)
            seen += page
            if len(page) < limit:
                return seen
            after = page[-1][1]
            if between_pages is not None:
                await between_pages()
        raise AssertionError("paging does not end")


KINDS = [Kind("flows", "metadata_updated"), Kind("sources", "updated")]

# n: (created, label). Ties in time and label are broken by id; labels sort by code point; missing labels last.
ITEMS = {1: (30, "beta"), 2: (10, "alpha"), 3: (20, None), 4: (20, "alpha"), 5: (40, "Gamma"), 6: (50, None),
         7: (25, "delta"), 8: (35, "Élan")}
ORDERS = {
    "created": [6, 5, 8, 1, 7, 3, 4, 2],  # newest first; 3 before 4 by id
    "updated": [4, 2, 6, 5, 8, 1, 7, 3],  # after 2 is edited at 60 and 4 at 70
    "label": [5, 2, 4, 1, 7, 8, 3, 6],  # "Gamma" < "alpha" < "beta" < "delta" < "Élan", then the missing by id
}


async def sorted_corpus(store: MetadataStore, kind: Kind) -> None:
    for n, (created, label) in ITEMS.items():
        await kind.create(store, n, created, label)
    await kind.touch(store, 2, 60)
    await kind.touch(store, 4, 70)


def expected_order(kind: Kind, sort_by: str) -> list[str]:
    return [kind.ident(n) for n in ORDERS["updated" if sort_by == kind.updated_sort else sort_by]]


CASES = [(kind, sort_by) for kind in KINDS for sort_by in ("created", kind.updated_sort, "label")]
CASE_IDS = [f"{kind.name}-{sort_by}" for kind, sort_by in CASES]


@pytest.mark.parametrize(("kind", "sort_by"), CASES, ids=CASE_IDS)
async def test_listings_follow_the_sort_reverse_exactly_and_page_by_the_last_key(store: MetadataStore, kind: Kind,
                                                                                 sort_by: str) -> None:
    await sorted_corpus(store, kind)
    expected = expected_order(kind, sort_by)
    assert [i for i, _ in await kind.page(store, Listing(sort_by=sort_by), 100)] == expected
    assert [i for i, _ in await kind.page(store, Listing(sort_by=sort_by, reverse=True), 100)] == expected[::-1]
    for limit in (2, 3):
        assert [i for i, _ in await kind.page_through(store, sort_by, False, limit)] == expected, f"limit {limit}"
        assert [i for i, _ in await kind.page_through(store, sort_by, True, limit)] == expected[::-1], \
            f"limit {limit}, reversed"


@pytest.mark.parametrize(("kind", "sort_by"), CASES, ids=CASE_IDS)
async def test_keyset_paging_is_stable_while_items_are_added_between_pages(store: MetadataStore, kind: Kind,
                                                                           sort_by: str) -> None:
    await sorted_corpus(store, kind)
    original = expected_order(kind, sort_by)
    added = [0]

    async def add_two() -> None:  # in every sort, one lands before the cursor and one (mostly) after it
        added[0] += 1
        n = added[0]
        await kind.create(store, 100 + n, 5 + n, "aaa" if n % 2 else "zzz")
        await kind.create(store, 200 + n, 1_000 + n, None)

    for reverse in (False, True):
        seen = await kind.page_through(store, sort_by, reverse, 2, add_two)
        ids, keys = [i for i, _ in seen], [k for _, k in seen]
        assert len(ids) == len(set(ids)), "an item came twice"
        assert [i for i in ids if i in original] == (original[::-1] if reverse else original), \
            "an item present from the start was skipped or moved"
        assert keys == sorted(keys, reverse=reverse), "pages are not in sort order"


async def test_metadata_updated_moves_on_replace_while_created_stays(store: MetadataStore) -> None:
    flow_id = await add_flow(store, now_ns=100)
    created = await store.put_flow({**(await store.get_flow(flow_id)).doc, "label": "new"}, 200)
    record = await store.get_flow(flow_id)
    assert created is False
    assert (record.created_ns, record.metadata_updated_ns, record.doc["label"]) == (100, 200, "new")
    await add_segments(store, flow_id, [seconds(0, 1)], now_ns=300)
    record = await store.get_flow(flow_id)
    assert (record.created_ns, record.metadata_updated_ns, record.segments_updated_ns) == (100, 200, 300)
