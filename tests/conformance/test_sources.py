"""`/sources`, `/sources/{sourceId}` and its `tags`, `label`, `description` (digest §1.4, §6.1;
checklist B.9-B.12, A.4-A.6).

Sources have no create or delete: one appears with the first flow PUT naming it and goes with its
last flow (tested in test_flows.py). Only `label`, `description` and `tags` are writable.
"""

from __future__ import annotations

import uuid

import httpx

from tests.conformance.helpers import (
    MALFORMED_ID,
    UNKNOWN_ID,
    all_pages,
    audio_flow,
    ids,
    multi_flow,
    new_flow,
    put_flow,
    same_as_get,
)
from tests.conftest import video_flow


async def new_source(tams: httpx.AsyncClient, **tags: str | list[str]) -> str:
    """A source (made by a flow PUT) with `tags` set through the sub-resource."""
    source_id = (await new_flow(tams))["source_id"]
    for name, value in tags.items():
        assert (await tams.put(f"/sources/{source_id}/tags/{name}", json=value)).status_code == 204
    return source_id


# -- /sources/{sourceId} ---------------------------------------------------------------------


async def test_get_sources_id_200_source_created_implicitly_by_flow_put(tams: httpx.AsyncClient) -> None:
    """Checklist B.9/B.12: the source gets `id` and `format` from the flow, and server-kept `created`/`updated`."""
    flow = await put_flow(tams, audio_flow())
    response = await tams.get(f"/sources/{flow['source_id']}")
    assert response.status_code == 200
    source = response.json()
    assert source["id"] == flow["source_id"] and source["format"] == "urn:x-nmos:format:audio"
    assert "created" in source and "updated" in source


async def test_get_sources_id_404_unknown_source(tams: httpx.AsyncClient) -> None:
    assert (await tams.get(f"/sources/{UNKNOWN_ID}")).status_code == 404


async def test_get_sources_id_404_malformed_id(tams: httpx.AsyncClient) -> None:
    """Reading chosen (README): a malformed id in a path answers 404 (every id operation documents 404)."""
    assert (await tams.get(f"/sources/{MALFORMED_ID}")).status_code == 404


async def test_head_sources_id_200_same_headers_as_get_without_body(tams: httpx.AsyncClient) -> None:
    source_id = await new_source(tams)
    assert (await same_as_get(tams, f"/sources/{source_id}")).status_code == 200


async def test_head_sources_id_404_unknown_source(tams: httpx.AsyncClient) -> None:
    assert (await same_as_get(tams, f"/sources/{UNKNOWN_ID}")).status_code == 404


# -- /sources --------------------------------------------------------------------------------


async def test_get_sources_200_filters_by_label_format_and_tags(tams: httpx.AsyncClient) -> None:
    """`tag.{name}` matches any listed value, array tags by any element; `tag_exists`; `label`; `format`."""
    mark = uuid.uuid4().hex
    news = await new_source(tams, run=mark, genre=["news", "live"])
    sport = await new_source(tams, run=mark, genre="sport")
    plain = await new_source(tams, run=mark)
    audio = (await put_flow(tams, audio_flow()))["source_id"]
    await tams.put(f"/sources/{audio}/tags/run", json=mark)
    await tams.put(f"/sources/{sport}/label", json=f"sport-{mark}")

    async def listed(**params: str) -> set[str]:
        return set(await ids(tams, "/sources", **{"tag.run": mark, **params}))

    assert await listed() == {news, sport, plain, audio}
    assert await listed(**{"tag.genre": "news"}) == {news}
    assert await listed(**{"tag.genre": "sport,live"}) == {news, sport}
    assert await listed(**{"tag.genre": "new"}) == set()  # no partial matches
    assert await listed(**{"tag_exists.genre": "true"}) == {news, sport}
    assert await listed(**{"tag_exists.genre": "false"}) == {plain, audio}
    assert await listed(label=f"sport-{mark}") == {sport}
    assert await listed(format="urn:x-nmos:format:audio") == {audio}


async def test_get_sources_200_collected_by_ids_and_empty_value_for_top_level(tams: httpx.AsyncClient) -> None:
    """Checklist B.12/A.5: `source_collection` and `collected_by` are inferred from flow collections;
    `collected_by_ids=` (empty) lists only sources nothing collects (ADR-0049)."""
    video, audio = await new_flow(tams), await put_flow(tams, audio_flow())
    multi = await put_flow(tams, multi_flow([video["id"], audio["id"]]))
    collected = set(await ids(tams, "/sources", collected_by_ids=multi["source_id"]))
    assert collected == {video["source_id"], audio["source_id"]}
    assert set(await ids(tams, "/sources", collected_by_ids=f"{uuid.uuid4()},{multi['source_id']}")) == collected
    top_level, _ = await all_pages(tams, "/sources", collected_by_ids="", limit="1000")
    top_ids = {s["id"] for s in top_level}
    assert multi["source_id"] in top_ids and video["source_id"] not in top_ids
    assert all("collected_by" not in s for s in top_level)


async def test_get_sources_200_sorts_by_created_updated_and_label_with_unset_last(tams: httpx.AsyncClient) -> None:
    """ADR-0052: dates newest first, strings ascending; items without the key by `id`, after the others
    (before them when reversed); `created` is the default."""
    mark = uuid.uuid4().hex
    sources = [await new_source(tams, sort=mark) for _ in range(4)]
    await tams.put(f"/sources/{sources[0]}/label", json="b")
    await tams.put(f"/sources/{sources[2]}/label", json="a")
    unlabelled = sorted([sources[1], sources[3]])

    async def order(**params: str) -> list[str]:
        items, _ = await all_pages(tams, "/sources", **{"tag.sort": mark, "limit": "2", **params})
        return [s["id"] for s in items]

    assert await order() == sources[::-1]
    assert await order(sort_by="created", reverse_order="true") == sources
    assert await order(sort_by="label") == [sources[2], sources[0], *unlabelled]
    assert await order(sort_by="label", reverse_order="true") == [*unlabelled[::-1], sources[0], sources[2]]
    assert await order(sort_by="updated") == [sources[2], sources[0], sources[3], sources[1]]


async def test_get_sources_200_keyset_paging_follows_link_and_keeps_filters(tams: httpx.AsyncClient) -> None:
    mark = uuid.uuid4().hex
    made = {await new_source(tams, page=mark) for _ in range(5)}
    first = await tams.get("/sources", params={"tag.page": mark, "limit": "2"})
    assert first.headers["X-Paging-Limit"] == "2" and first.headers["X-Paging-Count"] == "2"
    assert f"tag.page={mark}" in first.links["next"]["url"]
    items, pages = await all_pages(tams, "/sources", **{"tag.page": mark, "limit": "2"})
    assert [s["id"] for s in items if s["id"] in made] == [s["id"] for s in items] and len(items) == 5
    assert pages == 3


async def test_get_sources_400_for_invalid_sort_page_or_boolean(tams: httpx.AsyncClient) -> None:
    for params in ({"sort_by": "size"}, {"page": "not-a-key"}, {"reverse_order": "maybe"},
                   {"tag_exists.genre": "maybe"}):
        assert (await tams.get("/sources", params=params)).status_code == 400, params


async def test_get_sources_400_for_format_outside_its_enum(tams: httpx.AsyncClient) -> None:
    """`format` is declared as `content-format.json` (an enum); another value is an invalid query option."""
    assert (await tams.get("/sources", params={"format": "urn:x-nmos:format:smell"})).status_code == 400


async def test_head_sources_200_paging_headers_without_body(tams: httpx.AsyncClient) -> None:
    head = await same_as_get(tams, "/sources", limit="1")
    assert head.status_code == 200 and head.headers["X-Paging-Limit"] == "1"


async def test_head_sources_400_invalid_query(tams: httpx.AsyncClient) -> None:
    assert (await same_as_get(tams, "/sources", sort_by="size")).status_code == 400


# -- /sources/{sourceId}/tags ----------------------------------------------------------------


async def test_get_sources_id_tags_200_returns_the_tag_map(tams: httpx.AsyncClient) -> None:
    source_id = await new_source(tams, genre=["news", "live"], owner="bbc")
    response = await tams.get(f"/sources/{source_id}/tags")
    assert response.status_code == 200 and response.json() == {"genre": ["news", "live"], "owner": "bbc"}


async def test_get_sources_id_tags_404_unknown_source(tams: httpx.AsyncClient) -> None:
    assert (await tams.get(f"/sources/{UNKNOWN_ID}/tags")).status_code == 404


async def test_head_sources_id_tags_200_same_headers_as_get_without_body(tams: httpx.AsyncClient) -> None:
    assert (await same_as_get(tams, f"/sources/{await new_source(tams)}/tags")).status_code == 200


async def test_head_sources_id_tags_404_unknown_source(tams: httpx.AsyncClient) -> None:
    assert (await same_as_get(tams, f"/sources/{UNKNOWN_ID}/tags")).status_code == 404


async def test_get_sources_id_tags_name_200_string_or_array_value(tams: httpx.AsyncClient) -> None:
    source_id = await new_source(tams, genre=["news", "live"], owner="bbc")
    assert (await tams.get(f"/sources/{source_id}/tags/genre")).json() == ["news", "live"]
    assert (await tams.get(f"/sources/{source_id}/tags/owner")).json() == "bbc"


async def test_get_sources_id_tags_name_404_unknown_tag_or_source(tams: httpx.AsyncClient) -> None:
    source_id = await new_source(tams)
    assert (await tams.get(f"/sources/{source_id}/tags/missing")).status_code == 404
    assert (await tams.get(f"/sources/{UNKNOWN_ID}/tags/missing")).status_code == 404


async def test_head_sources_id_tags_name_200_same_headers_as_get_without_body(tams: httpx.AsyncClient) -> None:
    source_id = await new_source(tams, owner="bbc")
    assert (await same_as_get(tams, f"/sources/{source_id}/tags/owner")).status_code == 200


async def test_head_sources_id_tags_name_404_unknown_tag(tams: httpx.AsyncClient) -> None:
    source_id = await new_source(tams)
    assert (await same_as_get(tams, f"/sources/{source_id}/tags/missing")).status_code == 404


async def test_put_sources_id_tags_name_204_sets_string_and_array_values(tams: httpx.AsyncClient) -> None:
    source_id = await new_source(tams)
    assert (await tams.put(f"/sources/{source_id}/tags/site", json="london")).status_code == 204
    assert (await tams.put(f"/sources/{source_id}/tags/langs", json=["en", "cy"])).status_code == 204
    assert (await tams.put(f"/sources/{source_id}/tags/site", json="salford")).status_code == 204
    assert (await tams.get(f"/sources/{source_id}")).json()["tags"] == {"site": "salford", "langs": ["en", "cy"]}


async def test_put_sources_id_tags_name_400_value_not_string_or_string_array(tams: httpx.AsyncClient) -> None:
    source_id = await new_source(tams)
    for value in (5, {"a": "b"}, [1, 2], None):
        assert (await tams.put(f"/sources/{source_id}/tags/bad", json=value)).status_code == 400, value


async def test_put_sources_id_tags_name_404_unknown_source(tams: httpx.AsyncClient) -> None:
    assert (await tams.put(f"/sources/{UNKNOWN_ID}/tags/site", json="x")).status_code == 404


async def test_delete_sources_id_tags_name_204_removes_only_that_tag(tams: httpx.AsyncClient) -> None:
    source_id = await new_source(tams, keep="me", drop="me")
    assert (await tams.delete(f"/sources/{source_id}/tags/drop")).status_code == 204
    assert (await tams.get(f"/sources/{source_id}/tags")).json() == {"keep": "me"}


async def test_delete_sources_id_tags_name_404_unknown_tag_or_source(tams: httpx.AsyncClient) -> None:
    source_id = await new_source(tams)
    assert (await tams.delete(f"/sources/{source_id}/tags/missing")).status_code == 404
    assert (await tams.delete(f"/sources/{UNKNOWN_ID}/tags/missing")).status_code == 404


# -- /sources/{sourceId}/label and /description ----------------------------------------------


async def _field_round_trip(tams: httpx.AsyncClient, field: str) -> None:
    source_id = await new_source(tams)
    before = (await tams.get(f"/sources/{source_id}")).json()
    assert (await tams.put(f"/sources/{source_id}/{field}", json="camera A")).status_code == 204
    assert (await tams.get(f"/sources/{source_id}/{field}")).json() == "camera A"
    after = (await tams.get(f"/sources/{source_id}")).json()
    assert after[field] == "camera A"
    assert after["updated"] > before["updated"] and after["created"] == before["created"]


async def test_put_sources_id_label_204_sets_label_and_updated(tams: httpx.AsyncClient) -> None:
    await _field_round_trip(tams, "label")


async def test_put_sources_id_description_204_sets_description_and_updated(tams: httpx.AsyncClient) -> None:
    await _field_round_trip(tams, "description")


async def test_put_sources_id_label_400_not_a_string(tams: httpx.AsyncClient) -> None:
    source_id = await new_source(tams)
    for value in (12, ["a"], None):
        assert (await tams.put(f"/sources/{source_id}/label", json=value)).status_code == 400, value


async def test_put_sources_id_description_400_not_a_string(tams: httpx.AsyncClient) -> None:
    source_id = await new_source(tams)
    assert (await tams.put(f"/sources/{source_id}/description", json={"text": "x"})).status_code == 400


async def test_put_sources_id_label_404_unknown_source(tams: httpx.AsyncClient) -> None:
    assert (await tams.put(f"/sources/{UNKNOWN_ID}/label", json="x")).status_code == 404


async def test_put_sources_id_description_404_unknown_source(tams: httpx.AsyncClient) -> None:
    assert (await tams.put(f"/sources/{UNKNOWN_ID}/description", json="x")).status_code == 404


async def test_get_sources_id_label_200_returns_json_string(tams: httpx.AsyncClient) -> None:
    source_id = await new_source(tams)
    await tams.put(f"/sources/{source_id}/label", json="studio")
    response = await tams.get(f"/sources/{source_id}/label")
    assert response.status_code == 200 and response.json() == "studio"


async def test_get_sources_id_description_200_returns_json_string(tams: httpx.AsyncClient) -> None:
    source_id = await new_source(tams)
    await tams.put(f"/sources/{source_id}/description", json="the main camera")
    assert (await tams.get(f"/sources/{source_id}/description")).json() == "the main camera"


async def test_get_sources_id_label_404_unset_label_or_unknown_source(tams: httpx.AsyncClient) -> None:
    """Reading chosen (README): GET of an unset field answers 404."""
    source_id = await new_source(tams)
    assert (await tams.get(f"/sources/{source_id}/label")).status_code == 404
    assert (await tams.get(f"/sources/{UNKNOWN_ID}/label")).status_code == 404


async def test_get_sources_id_description_404_unset_description_or_unknown_source(tams: httpx.AsyncClient) -> None:
    """Reading chosen (README): GET of an unset field answers 404."""
    source_id = await new_source(tams)
    assert (await tams.get(f"/sources/{source_id}/description")).status_code == 404
    assert (await tams.get(f"/sources/{UNKNOWN_ID}/description")).status_code == 404


async def test_head_sources_id_label_200_same_headers_as_get_without_body(tams: httpx.AsyncClient) -> None:
    source_id = await new_source(tams)
    await tams.put(f"/sources/{source_id}/label", json="studio")
    assert (await same_as_get(tams, f"/sources/{source_id}/label")).status_code == 200


async def test_head_sources_id_label_404_unset_label(tams: httpx.AsyncClient) -> None:
    assert (await same_as_get(tams, f"/sources/{await new_source(tams)}/label")).status_code == 404


async def test_head_sources_id_description_200_same_headers_as_get_without_body(tams: httpx.AsyncClient) -> None:
    source_id = await new_source(tams)
    await tams.put(f"/sources/{source_id}/description", json="d")
    assert (await same_as_get(tams, f"/sources/{source_id}/description")).status_code == 200


async def test_head_sources_id_description_404_unset_description(tams: httpx.AsyncClient) -> None:
    assert (await same_as_get(tams, f"/sources/{await new_source(tams)}/description")).status_code == 404


async def test_delete_sources_id_label_204_removes_label(tams: httpx.AsyncClient) -> None:
    source_id = await new_source(tams)
    await tams.put(f"/sources/{source_id}/label", json="studio")
    assert (await tams.delete(f"/sources/{source_id}/label")).status_code == 204
    assert "label" not in (await tams.get(f"/sources/{source_id}")).json()


async def test_delete_sources_id_description_204_removes_description(tams: httpx.AsyncClient) -> None:
    source_id = await new_source(tams)
    await tams.put(f"/sources/{source_id}/description", json="d")
    assert (await tams.delete(f"/sources/{source_id}/description")).status_code == 204
    assert "description" not in (await tams.get(f"/sources/{source_id}")).json()


async def test_delete_sources_id_label_404_unset_label_or_unknown_source(tams: httpx.AsyncClient) -> None:
    assert (await tams.delete(f"/sources/{await new_source(tams)}/label")).status_code == 404
    assert (await tams.delete(f"/sources/{UNKNOWN_ID}/label")).status_code == 404


async def test_delete_sources_id_description_404_unset_description_or_unknown_source(
        tams: httpx.AsyncClient) -> None:
    assert (await tams.delete(f"/sources/{await new_source(tams)}/description")).status_code == 404
    assert (await tams.delete(f"/sources/{UNKNOWN_ID}/description")).status_code == 404


async def test_put_sources_id_label_204_does_not_change_the_flows_of_the_source(tams: httpx.AsyncClient) -> None:
    """Source metadata is not copied to or from flows (AppNote 0007): only the source changes."""
    flow = await put_flow(tams, video_flow(label="flow label"))
    await tams.put(f"/sources/{flow['source_id']}/label", json="source label")
    assert (await tams.get(f"/flows/{flow['id']}")).json()["label"] == "flow label"
