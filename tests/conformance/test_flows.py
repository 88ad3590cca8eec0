"""`/flows` and `/flows/{flowId}` (digest §1.5, §6.2-6.3; checklist C.13-C.16, C.19, C.21, A.4-A.7).

Flows created from profiles are in test_profiles.py; the 202 of a large flow delete is in
test_delete_requests.py; every-format round trips of the official `flow-get-200-*` examples are in
tests/test_api_reads.py (so they are not repeated here).
"""

from __future__ import annotations

import uuid

import httpx

from tests.conformance.helpers import (
    MALFORMED_ID,
    UNKNOWN_ID,
    add_segments,
    all_pages,
    audio_flow,
    example,
    flow_with_segments,
    ids,
    multi_flow,
    new_flow,
    put_flow,
    same_as_get,
    timeranges,
    uid,
)
from tests.conftest import video_flow


def official_flow_put() -> dict:
    """`flow-put.json` (an audio flow) with fresh ids, so each run creates new resources."""
    return {**example("flow-put.json"), "id": uid(), "source_id": uid()}


# -- PUT /flows/{flowId} ---------------------------------------------------------------------


async def test_put_flows_id_201_creates_flow_and_implicit_source(tams: httpx.AsyncClient) -> None:
    """The official `flow-put.json` is accepted; 201 returns the flow (validated as flow-get by the hook)."""
    flow = official_flow_put()
    response = await tams.put(f"/flows/{flow['id']}", json=flow)
    assert response.status_code == 201, response.text
    created = response.json()
    for key in ("id", "source_id", "format", "codec", "container", "label", "description", "tags", "avg_bit_rate",
                "generation", "essence_parameters"):
        assert created[key] == flow[key], key
    assert "created" in created and "metadata_updated" in created and "metadata_version" in created
    source = (await tams.get(f"/sources/{flow['source_id']}")).json()
    assert source["format"] == flow["format"]


async def test_put_flows_id_201_accepts_official_multi_example_once_members_exist(tams: httpx.AsyncClient) -> None:
    """`flow-put-multi.json` with every id replaced by a fresh one. Its collection names the multi flow's
    own id (a flow cannot collect itself here), so that member is mapped to a separate new flow."""
    multi = example("flow-put-multi.json")
    mapping = {item["id"]: uid() for item in multi["flow_collection"]}
    for member in mapping.values():
        await put_flow(tams, video_flow(member))
    multi = {**multi, "id": uid(), "source_id": uid(),
             "flow_collection": [{**item, "id": mapping[item["id"]]} for item in multi["flow_collection"]]}
    response = await tams.put(f"/flows/{multi['id']}", json=multi)
    assert response.status_code == 201, response.text
    assert [m["id"] for m in response.json()["flow_collection"]] == list(mapping.values())
    for member in mapping.values():
        assert (await tams.get(f"/flows/{member}")).json()["collected_by"] == [multi["id"]]


async def test_put_flows_id_201_ignores_server_managed_fields(tams: httpx.AsyncClient) -> None:
    """`created`, `metadata_updated`, `segments_updated`, `collected_by` and `timerange` in a PUT are ignored."""
    flow = video_flow(created="2000-01-01T00:00:00Z", metadata_updated="2000-01-01T00:00:00Z",
                      segments_updated="2000-01-01T00:00:00Z", collected_by=[uid()], timerange="[0:0_100:0)")
    response = await tams.put(f"/flows/{flow['id']}", json=flow)
    assert response.status_code == 201, response.text
    got = (await tams.get(f"/flows/{flow['id']}", params={"include_timerange": "true"})).json()
    assert not got["created"].startswith("2000") and not got["metadata_updated"].startswith("2000")
    assert "segments_updated" not in got and "collected_by" not in got
    assert got["timerange"] == "()"


async def test_put_flows_id_201_keeps_client_supplied_metadata_version(tams: httpx.AsyncClient) -> None:
    """Checklist C.19: a `metadata_version` supplied on creation is kept (replication)."""
    flow = await put_flow(tams, video_flow(metadata_version="from-the-origin-store"))
    assert (await tams.get(f"/flows/{flow['id']}")).json()["metadata_version"] == "from-the-origin-store"


async def test_put_flows_id_204_replaces_flow(tams: httpx.AsyncClient) -> None:
    """A PUT of an existing flow replaces it: 204, new values, `created` kept, `tags` replaced wholesale
    and an omitted `tags` leaves none."""
    flow = await put_flow(tams, video_flow(label="first", tags={"a": "1", "b": "2"}))
    before = (await tams.get(f"/flows/{flow['id']}")).json()
    replaced = await tams.put(f"/flows/{flow['id']}", json={**flow, "label": "second", "tags": {"c": "3"}})
    assert replaced.status_code == 204 and replaced.content == b""
    after = (await tams.get(f"/flows/{flow['id']}")).json()
    assert after["label"] == "second" and after["tags"] == {"c": "3"}
    assert after["created"] == before["created"] and after["metadata_updated"] > before["metadata_updated"]
    without_tags = {k: v for k, v in flow.items() if k != "tags"}
    assert (await tams.put(f"/flows/{flow['id']}", json=without_tags)).status_code == 204
    assert (await tams.get(f"/flows/{flow['id']}")).json().get("tags", {}) == {}


async def test_put_flows_id_204_generates_new_metadata_version_on_change(tams: httpx.AsyncClient) -> None:
    """Checklist C.19: `metadata_version` changes whenever metadata changes (also via sub-resources)."""
    flow = await put_flow(tams, video_flow(label="v1"))
    first = (await tams.get(f"/flows/{flow['id']}")).json()["metadata_version"]
    assert (await tams.put(f"/flows/{flow['id']}", json={**flow, "label": "v2"})).status_code == 204
    second = (await tams.get(f"/flows/{flow['id']}")).json()["metadata_version"]
    assert second != first
    await tams.put(f"/flows/{flow['id']}/description", json="now described")
    assert (await tams.get(f"/flows/{flow['id']}")).json()["metadata_version"] not in (first, second)


async def test_put_flows_id_400_invalid_flow_body(tams: httpx.AsyncClient) -> None:
    """Request bodies are validated against flow-put (checklist A.7, C.13)."""
    flow = video_flow()
    no_frame_rate = {**flow, "essence_parameters": {"frame_width": 1920, "frame_height": 1080}}
    vfr_with_rate = {**flow, "essence_parameters": {**flow["essence_parameters"], "vfr": True}}
    unknown_essence = {**flow, "essence_parameters": {**flow["essence_parameters"], "colour": "blue"}}
    bad_bodies = [no_frame_rate, vfr_with_rate, unknown_essence, {**flow, "format": "urn:x-nmos:format:smell"},
                  {k: v for k, v in flow.items() if k != "source_id"}, {**flow, "source_id": "not-a-uuid"},
                  {**flow, "codec": "no slash"}, {**flow, "tags": {"x": 5}}, [flow], "flow"]
    for body in bad_bodies:
        response = await tams.put(f"/flows/{flow['id']}", json=body)
        assert response.status_code == 400, body
    response = await tams.put(f"/flows/{flow['id']}", content=b"{", headers={"content-type": "application/json"})
    assert response.status_code == 400
    assert (await tams.get(f"/flows/{flow['id']}")).status_code == 404  # nothing was created


async def test_put_flows_id_400_body_id_differs_from_path(tams: httpx.AsyncClient) -> None:
    """ADR-0025: the body's `id` should equal the path id."""
    flow = video_flow()
    assert (await tams.put(f"/flows/{uid()}", json=flow)).status_code == 400


async def test_put_flows_id_400_format_conflicts_with_source(tams: httpx.AsyncClient) -> None:
    """The service SHOULD check a flow against its source: another flow of the same source with a different
    `format` is a conflict (400)."""
    video = await new_flow(tams)
    audio = audio_flow(source_id=video["source_id"])
    assert (await tams.put(f"/flows/{audio['id']}", json=audio)).status_code == 400


async def test_put_flows_id_403_read_only_flow(tams: httpx.AsyncClient) -> None:
    """Checklist C.18: a read-only flow refuses metadata changes (only `read_only` itself may change)."""
    flow = await put_flow(tams, video_flow(read_only=True))
    assert (await tams.put(f"/flows/{flow['id']}", json={**flow, "label": "changed"})).status_code == 403
    assert "label" not in (await tams.get(f"/flows/{flow['id']}")).json()


async def test_put_flows_id_404_malformed_flow_id(tams: httpx.AsyncClient) -> None:
    """Reading chosen (README): a malformed id in a path answers 404 ("the Flow ID in the path is invalid")."""
    flow = video_flow(MALFORMED_ID)
    assert (await tams.put(f"/flows/{MALFORMED_ID}", json=flow)).status_code == 404


async def test_put_flows_id_413_body_larger_than_the_service_accepts(tams: httpx.AsyncClient) -> None:
    """Not documented, but allowed: a body over 8 MiB is refused with 413 and the error body."""
    response = await tams.put(f"/flows/{uid()}", content=b" " * (8 * 1024 * 1024 + 1),
                              headers={"content-type": "application/json"})
    assert response.status_code == 413


# -- GET /flows/{flowId} ---------------------------------------------------------------------


async def test_get_flows_id_200_omits_timerange_unless_asked(tams: httpx.AsyncClient) -> None:
    flow, _ = await flow_with_segments(tams, ["[0:0_2:0)"])
    response = await tams.get(f"/flows/{flow['id']}")
    assert response.status_code == 200 and "timerange" not in response.json()
    assert response.json()["segments_updated"]


async def test_get_flows_id_200_include_timerange_is_the_hull_of_its_segments(tams: httpx.AsyncClient) -> None:
    """Reading chosen (README): the flow `timerange` is the half-open hull of its segments (gaps included)."""
    flow, _ = await flow_with_segments(tams, ["[0:0_2:0)", "[8:0_10:0)"])
    got = (await tams.get(f"/flows/{flow['id']}", params={"include_timerange": "true"})).json()
    assert got["timerange"] == "[0:0_10:0)"


async def test_get_flows_id_200_empty_flow_has_never_timerange(tams: httpx.AsyncClient) -> None:
    flow = await new_flow(tams)
    assert (await tams.get(f"/flows/{flow['id']}", params={"include_timerange": "true"})).json()["timerange"] == "()"


async def test_get_flows_id_200_timerange_query_limits_to_where_segments_overlap_it(tams: httpx.AsyncClient) -> None:
    """`timerange` limits the response's `timerange` "to the time range over which Segments partially or wholly
    overlap with the provided timerange": it never reaches into a gap no segment covers. Either the span of the
    overlapping segments or that span clipped to the query is accepted."""
    flow, _ = await flow_with_segments(tams, ["[0:0_2:0)", "[8:0_10:0)"])

    async def clipped(query: str) -> str:
        response = await tams.get(f"/flows/{flow['id']}", params={"include_timerange": "true", "timerange": query})
        return response.json()["timerange"]

    assert await clipped("[1:0_9:0)") in ("[1:0_9:0)", "[0:0_10:0)")
    assert await clipped("[1:0_5:0)") in ("[1:0_2:0)", "[0:0_2:0)")
    assert await clipped("[3:0_5:0)") == "()"


async def test_get_flows_id_400_invalid_query(tams: httpx.AsyncClient) -> None:
    flow = await new_flow(tams)
    for params in ({"include_timerange": "maybe"}, {"timerange": "bogus"}, {"timerange": "[0:050000000_1:0)"}):
        assert (await tams.get(f"/flows/{flow['id']}", params=params)).status_code == 400, params


async def test_get_flows_id_404_unknown_flow_with_error_body(tams: httpx.AsyncClient) -> None:
    """Errors are `{type, summary, time}` (the hook checks the shape of every error)."""
    response = await tams.get(f"/flows/{UNKNOWN_ID}")
    assert response.status_code == 404
    assert UNKNOWN_ID in response.json()["summary"]


async def test_get_flows_id_404_malformed_flow_id(tams: httpx.AsyncClient) -> None:
    """Reading chosen (README): a malformed id answers 404."""
    assert (await tams.get(f"/flows/{MALFORMED_ID}")).status_code == 404


async def test_head_flows_id_200_same_headers_as_get_without_body(tams: httpx.AsyncClient) -> None:
    flow = await new_flow(tams)
    assert (await same_as_get(tams, f"/flows/{flow['id']}", include_timerange="true")).status_code == 200


async def test_head_flows_id_400_invalid_query(tams: httpx.AsyncClient) -> None:
    flow = await new_flow(tams)
    assert (await same_as_get(tams, f"/flows/{flow['id']}", timerange="bogus")).status_code == 400


async def test_head_flows_id_404_unknown_flow(tams: httpx.AsyncClient) -> None:
    assert (await same_as_get(tams, f"/flows/{UNKNOWN_ID}")).status_code == 404


# -- GET /flows ------------------------------------------------------------------------------


async def test_get_flows_200_filters_by_source_format_codec_label_and_status(tams: httpx.AsyncClient) -> None:
    mark = uuid.uuid4().hex
    video = await put_flow(tams, video_flow(tags={"run": mark}, label=f"l-{mark}", status="ingesting"))
    sibling = await put_flow(tams, video_flow(source_id=video["source_id"], tags={"run": mark},
                                              codec="video/h265"))
    audio = await put_flow(tams, audio_flow(tags={"run": mark}, status="closed_complete"))

    async def listed(**params: str) -> set[str]:
        return set(await ids(tams, "/flows", **{"tag.run": mark, **params}))

    assert await listed() == {video["id"], sibling["id"], audio["id"]}
    assert await listed(source_id=video["source_id"]) == {video["id"], sibling["id"]}
    assert await listed(format="urn:x-nmos:format:audio") == {audio["id"]}
    assert await listed(codec="video/h265") == {sibling["id"]}
    assert await listed(label=f"l-{mark}") == {video["id"]}
    assert await listed(status="ingesting") == {video["id"]}
    assert await listed(status="closed_complete") == {audio["id"]}


async def test_get_flows_200_filters_by_tags_frame_size_and_init_segments(tams: httpx.AsyncClient) -> None:
    """`tag.{name}` (any listed value, any element of an array tag, no partial match), `tag_exists`,
    `frame_width`/`frame_height` of video essence, and `init_segments`."""
    mark = uuid.uuid4().hex
    news = await put_flow(tams, video_flow(tags={"run": mark, "genre": ["news", "live"]}))
    sport = await put_flow(tams, video_flow(tags={"run": mark, "genre": "sport"}))
    small = video_flow(tags={"run": mark})
    small["essence_parameters"] = {**small["essence_parameters"], "frame_width": 640, "frame_height": 360,
                                   "init_segments": True}
    await put_flow(tams, small)

    async def listed(**params: str) -> set[str]:
        return set(await ids(tams, "/flows", **{"tag.run": mark, **params}))

    assert await listed(**{"tag.genre": "news"}) == {news["id"]}
    assert await listed(**{"tag.genre": "sport,live"}) == {news["id"], sport["id"]}
    assert await listed(**{"tag.genre": "spor"}) == set()
    assert await listed(**{"tag_exists.genre": "false"}) == {small["id"]}
    assert await listed(**{"tag_exists.genre": "true"}) == {news["id"], sport["id"]}
    assert await listed(frame_width="640") == {small["id"]}
    assert await listed(frame_height="1080") == {news["id"], sport["id"]}
    assert await listed(init_segments="true") == {small["id"]}
    assert await listed(init_segments="false") == {news["id"], sport["id"]}


async def test_get_flows_200_timerange_overlap_and_never_for_flows_without_content(tams: httpx.AsyncClient) -> None:
    """`timerange=X` lists flows whose content overlaps X (clusivity honoured); `timerange=()` lists flows with
    no content (AppNote 0019)."""
    mark = uuid.uuid4().hex
    early, _ = await flow_with_segments(tams, ["[5:0_6:0)"], tags={"run": mark})
    late, _ = await flow_with_segments(tams, ["[10:0_11:0)"], tags={"run": mark})
    empty = await new_flow(tams, tags={"run": mark})

    async def listed(timerange: str) -> set[str]:
        return set(await ids(tams, "/flows", **{"tag.run": mark, "timerange": timerange}))

    assert await listed("[5:500000000_7:0)") == {early["id"]}
    assert await listed("[6:0_10:0)") == set()  # both ends exclusive of the content
    assert await listed("[6:0_10:0]") == {late["id"]}
    assert await listed("_") == {early["id"], late["id"], empty["id"]}
    assert await listed("()") == {empty["id"]}


async def test_get_flows_200_collected_by_ids_and_empty_value_for_top_level(tams: httpx.AsyncClient) -> None:
    video, audio = await new_flow(tams), await put_flow(tams, audio_flow())
    multi = await put_flow(tams, multi_flow([video["id"], audio["id"]]))
    assert set(await ids(tams, "/flows", collected_by_ids=multi["id"])) == {video["id"], audio["id"]}
    top_level, _ = await all_pages(tams, "/flows", collected_by_ids="", limit="1000")
    top_ids = {f["id"] for f in top_level}
    assert multi["id"] in top_ids and video["id"] not in top_ids and audio["id"] not in top_ids


async def test_get_flows_200_sorts_by_created_metadata_updated_and_label(tams: httpx.AsyncClient) -> None:
    """ADR-0052: `created` (default) and `metadata_updated` newest first, `label` ascending with unlabelled flows
    after by id; `reverse_order` inverts each."""
    mark = uuid.uuid4().hex
    flows = [await put_flow(tams, video_flow(tags={"sort": mark}, **({"label": lbl} if lbl else {})))
             for lbl in ("delta", None, "alpha", None)]
    await tams.put(f"/flows/{flows[0]['id']}/description", json="touched last")
    unlabelled = sorted(f["id"] for f in flows if "label" not in f)
    created = [f["id"] for f in flows]

    async def order(**params: str) -> list[str]:
        items, _ = await all_pages(tams, "/flows", **{"tag.sort": mark, "limit": "3", **params})
        return [f["id"] for f in items]

    assert await order() == created[::-1]
    assert await order(sort_by="created", reverse_order="true") == created
    assert await order(sort_by="metadata_updated") == [created[0], created[3], created[2], created[1]]
    assert await order(sort_by="label") == [created[2], created[0], *unlabelled]
    assert await order(sort_by="label", reverse_order="true") == [*unlabelled[::-1], created[0], created[2]]


async def test_get_flows_200_keyset_paging_with_link_and_paging_headers(tams: httpx.AsyncClient) -> None:
    """ADR-0010: `limit`, opaque `page`, `Link: rel="next"` keeping the filters, `X-Paging-*`; no `Link` on the
    last page; a page is unaffected by flows created after the first page was read (keyset, not offset)."""
    mark = uuid.uuid4().hex
    flows = [await put_flow(tams, video_flow(tags={"page": mark})) for _ in range(5)]
    first = await tams.get("/flows", params={"tag.page": mark, "limit": "2"})
    assert [f["id"] for f in first.json()] == [flows[4]["id"], flows[3]["id"]]
    assert first.headers["X-Paging-Limit"] == "2" and first.headers["X-Paging-Reverse-Order"] == "false"
    await put_flow(tams, video_flow(tags={"page": mark}))  # newer than everything: must not shift the pages
    second = await tams.get(first.links["next"]["url"])
    assert [f["id"] for f in second.json()] == [flows[2]["id"], flows[1]["id"]]
    last = await tams.get(second.links["next"]["url"])
    assert [f["id"] for f in last.json()] == [flows[0]["id"]]
    assert "next" not in last.links and "X-Paging-NextKey" not in last.headers


async def test_get_flows_200_limit_is_never_an_error(tams: httpx.AsyncClient) -> None:
    """Reading chosen (README): a missing or unusable `limit` gives 100, others are clamped to 1-1000."""
    for raw, applied in (("0", "1"), ("-5", "1"), ("5000", "1000"), ("many", "100"), (None, "100")):
        response = await tams.get("/flows", params={} if raw is None else {"limit": raw})
        assert response.status_code == 200 and response.headers["X-Paging-Limit"] == applied, raw


async def test_get_flows_400_for_invalid_sort_page_or_typed_filter(tams: httpx.AsyncClient) -> None:
    for params in ({"sort_by": "size"}, {"page": "not-a-key"}, {"reverse_order": "maybe"},
                   {"frame_width": "wide"}, {"init_segments": "maybe"}, {"timerange": "bogus"},
                   {"tag_exists.x": "maybe"}):
        assert (await tams.get("/flows", params=params)).status_code == 400, params


async def test_get_flows_400_for_values_outside_their_declared_schema(tams: httpx.AsyncClient) -> None:
    """`format` and `status` are enums and `source_id`/`profile_id` UUIDs in the document; other values are
    invalid query options (400), like `frame_width=wide` already is."""
    for params in ({"format": "urn:x-nmos:format:smell"}, {"status": "sleeping"}, {"source_id": "not-a-uuid"},
                   {"profile_id": "not-a-uuid"}):
        assert (await tams.get("/flows", params=params)).status_code == 400, params


async def test_head_flows_200_paging_headers_without_body(tams: httpx.AsyncClient) -> None:
    head = await same_as_get(tams, "/flows", limit="1")
    assert head.status_code == 200 and head.headers["X-Paging-Count"] in ("0", "1")


async def test_head_flows_400_invalid_query(tams: httpx.AsyncClient) -> None:
    assert (await same_as_get(tams, "/flows", sort_by="size")).status_code == 400


# -- DELETE /flows/{flowId} ------------------------------------------------------------------


async def test_delete_flows_id_204_deletes_flow_segments_and_source_with_last_flow(tams: httpx.AsyncClient) -> None:
    """Checklist B.9, C.21: the flow and its segments go; its source goes with the source's last flow."""
    flow, _ = await flow_with_segments(tams, ["[0:0_1:0)"])
    sibling = await put_flow(tams, video_flow(source_id=flow["source_id"]))
    response = await tams.delete(f"/flows/{flow['id']}")
    assert response.status_code == 204 and response.content == b""
    assert (await tams.get(f"/flows/{flow['id']}")).status_code == 404
    assert await timeranges(tams, flow["id"]) == []
    assert (await tams.get(f"/sources/{flow['source_id']}")).status_code == 200  # the sibling keeps it
    assert (await tams.delete(f"/flows/{sibling['id']}")).status_code == 204
    assert (await tams.get(f"/sources/{flow['source_id']}")).status_code == 404


async def test_delete_flows_id_204_removes_it_from_collections(tams: httpx.AsyncClient) -> None:
    member = await new_flow(tams)
    multi = await put_flow(tams, multi_flow([member["id"]]))
    assert (await tams.delete(f"/flows/{multi['id']}")).status_code == 204
    assert "collected_by" not in (await tams.get(f"/flows/{member['id']}")).json()


async def test_delete_flows_id_403_read_only(tams: httpx.AsyncClient) -> None:
    flow = await put_flow(tams, video_flow(read_only=True))
    assert (await tams.delete(f"/flows/{flow['id']}")).status_code == 403
    assert (await tams.get(f"/flows/{flow['id']}")).status_code == 200


async def test_delete_flows_id_404_unknown_or_already_deleted_flow(tams: httpx.AsyncClient) -> None:
    assert (await tams.delete(f"/flows/{UNKNOWN_ID}")).status_code == 404
    flow = await new_flow(tams)
    assert (await tams.delete(f"/flows/{flow['id']}")).status_code == 204
    assert (await tams.delete(f"/flows/{flow['id']}")).status_code == 404


async def test_put_flows_id_201_after_delete_creates_afresh(tams: httpx.AsyncClient) -> None:
    flow, _ = await flow_with_segments(tams, ["[0:0_1:0)"])
    await tams.delete(f"/flows/{flow['id']}")
    assert (await tams.put(f"/flows/{flow['id']}", json=flow)).status_code == 201
    assert await timeranges(tams, flow["id"]) == []
    await add_segments(tams, flow["id"], ["[0:0_1:0)"])
