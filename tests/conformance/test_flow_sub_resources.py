"""Flow sub-resources: `tags`, `tags/{name}`, `label`, `description`, `max_bit_rate`, `avg_bit_rate`,
`read_only` and `flow_collection` (digest §1.5; checklist C.17, C.18, C.20).

`label`, `description`, `max_bit_rate` and `avg_bit_rate` behave alike, so their tests are made by
`_field_tests` from one table (one named test per operation and status, as everywhere). The 400 of
`avg_bit_rate` on a profile-linked flow is in test_profiles.py.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import httpx

from tests.conformance.helpers import (
    UNKNOWN_ID,
    audio_flow,
    example,
    multi_flow,
    new_flow,
    put_flow,
    same_as_get,
    uid,
)
from tests.conftest import video_flow

# field -> (a valid value, another valid value, invalid values)
SCALAR_FIELDS: dict[str, tuple[Any, Any, list[Any]]] = {
    "label": ("studio 1", "studio 2", [12, ["a"], None]),
    "description": ("main feed", "backup feed", [{"text": "x"}, 1]),
    "max_bit_rate": (8000, 0, [-1, "fast", 1.5, None, True]),
    "avg_bit_rate": (6000, 0, [-1, "slow", True]),
}


async def read_only_flow(tams: httpx.AsyncClient, **extra: object) -> dict[str, Any]:
    flow = await new_flow(tams, **extra)
    assert (await tams.put(f"/flows/{flow['id']}/read_only", json=True)).status_code == 204
    return flow


def _field_tests(field: str) -> dict[str, Callable[[httpx.AsyncClient], Awaitable[None]]]:
    value, other, invalid = SCALAR_FIELDS[field]

    async def get_200(tams: httpx.AsyncClient) -> None:
        flow = await new_flow(tams, **{field: value})
        response = await tams.get(f"/flows/{flow['id']}/{field}")
        assert response.status_code == 200 and response.json() == value

    async def get_404(tams: httpx.AsyncClient) -> None:
        """Reading chosen (README): GET of an unset field answers 404; so does an unknown flow."""
        flow = await new_flow(tams)
        assert (await tams.get(f"/flows/{flow['id']}/{field}")).status_code == 404
        assert (await tams.get(f"/flows/{UNKNOWN_ID}/{field}")).status_code == 404

    async def head_200(tams: httpx.AsyncClient) -> None:
        flow = await new_flow(tams, **{field: value})
        assert (await same_as_get(tams, f"/flows/{flow['id']}/{field}")).status_code == 200

    async def head_404(tams: httpx.AsyncClient) -> None:
        assert (await same_as_get(tams, f"/flows/{UNKNOWN_ID}/{field}")).status_code == 404

    async def put_204(tams: httpx.AsyncClient) -> None:
        flow = await new_flow(tams)
        before = (await tams.get(f"/flows/{flow['id']}")).json()
        for v in (value, other):
            response = await tams.put(f"/flows/{flow['id']}/{field}", json=v)
            assert response.status_code == 204 and response.content == b""
            assert (await tams.get(f"/flows/{flow['id']}/{field}")).json() == v
        after = (await tams.get(f"/flows/{flow['id']}")).json()
        assert after[field] == other and after["metadata_updated"] > before["metadata_updated"]

    async def put_400(tams: httpx.AsyncClient) -> None:
        flow = await new_flow(tams, **{field: value})
        for bad in invalid:
            assert (await tams.put(f"/flows/{flow['id']}/{field}", json=bad)).status_code == 400, bad
        assert (await tams.get(f"/flows/{flow['id']}/{field}")).json() == value

    async def put_403(tams: httpx.AsyncClient) -> None:
        flow = await read_only_flow(tams)
        assert (await tams.put(f"/flows/{flow['id']}/{field}", json=value)).status_code == 403
        assert (await tams.get(f"/flows/{flow['id']}/{field}")).status_code == 404

    async def put_404(tams: httpx.AsyncClient) -> None:
        assert (await tams.put(f"/flows/{UNKNOWN_ID}/{field}", json=value)).status_code == 404

    async def delete_204(tams: httpx.AsyncClient) -> None:
        flow = await new_flow(tams, **{field: value})
        response = await tams.delete(f"/flows/{flow['id']}/{field}")
        assert response.status_code == 204 and response.content == b""
        assert field not in (await tams.get(f"/flows/{flow['id']}")).json()

    async def delete_403(tams: httpx.AsyncClient) -> None:
        flow = await read_only_flow(tams, **{field: value})
        assert (await tams.delete(f"/flows/{flow['id']}/{field}")).status_code == 403
        assert (await tams.get(f"/flows/{flow['id']}/{field}")).json() == value

    async def delete_404(tams: httpx.AsyncClient) -> None:
        """An unset field or an unknown flow."""
        flow = await new_flow(tams)
        assert (await tams.delete(f"/flows/{flow['id']}/{field}")).status_code == 404
        assert (await tams.delete(f"/flows/{UNKNOWN_ID}/{field}")).status_code == 404

    return {
        f"test_get_flows_id_{field}_200_returns_the_value": get_200,
        f"test_get_flows_id_{field}_404_unset_or_unknown_flow": get_404,
        f"test_head_flows_id_{field}_200_same_headers_as_get_without_body": head_200,
        f"test_head_flows_id_{field}_404_unknown_flow": head_404,
        f"test_put_flows_id_{field}_204_sets_and_replaces_the_value": put_204,
        f"test_put_flows_id_{field}_400_invalid_value": put_400,
        f"test_put_flows_id_{field}_403_read_only": put_403,
        f"test_put_flows_id_{field}_404_unknown_flow": put_404,
        f"test_delete_flows_id_{field}_204_removes_the_value": delete_204,
        f"test_delete_flows_id_{field}_403_read_only": delete_403,
        f"test_delete_flows_id_{field}_404_unset_or_unknown_flow": delete_404,
    }


for _field in SCALAR_FIELDS:
    for _name, _test in _field_tests(_field).items():
        _test.__name__ = _test.__qualname__ = _name
        globals()[_name] = _test


# -- tags ------------------------------------------------------------------------------------


async def test_get_flows_id_tags_200_returns_the_tag_map(tams: httpx.AsyncClient) -> None:
    flow = await new_flow(tams, tags={"genre": ["news", "live"], "owner": "bbc"})
    response = await tams.get(f"/flows/{flow['id']}/tags")
    assert response.status_code == 200 and response.json() == {"genre": ["news", "live"], "owner": "bbc"}


async def test_get_flows_id_tags_404_unknown_flow(tams: httpx.AsyncClient) -> None:
    assert (await tams.get(f"/flows/{UNKNOWN_ID}/tags")).status_code == 404


async def test_head_flows_id_tags_200_same_headers_as_get_without_body(tams: httpx.AsyncClient) -> None:
    flow = await new_flow(tams, tags={"a": "b"})
    assert (await same_as_get(tams, f"/flows/{flow['id']}/tags")).status_code == 200


async def test_head_flows_id_tags_404_unknown_flow(tams: httpx.AsyncClient) -> None:
    assert (await same_as_get(tams, f"/flows/{UNKNOWN_ID}/tags")).status_code == 404


async def test_get_flows_id_tags_name_200_string_or_array_value(tams: httpx.AsyncClient) -> None:
    flow = await new_flow(tams, tags={"genre": ["news", "live"], "owner": "bbc"})
    assert (await tams.get(f"/flows/{flow['id']}/tags/genre")).json() == ["news", "live"]
    assert (await tams.get(f"/flows/{flow['id']}/tags/owner")).json() == "bbc"


async def test_get_flows_id_tags_name_404_unknown_tag_or_flow(tams: httpx.AsyncClient) -> None:
    flow = await new_flow(tams)
    assert (await tams.get(f"/flows/{flow['id']}/tags/missing")).status_code == 404
    assert (await tams.get(f"/flows/{UNKNOWN_ID}/tags/missing")).status_code == 404


async def test_head_flows_id_tags_name_200_same_headers_as_get_without_body(tams: httpx.AsyncClient) -> None:
    flow = await new_flow(tams, tags={"owner": "bbc"})
    assert (await same_as_get(tams, f"/flows/{flow['id']}/tags/owner")).status_code == 200


async def test_head_flows_id_tags_name_404_unknown_tag(tams: httpx.AsyncClient) -> None:
    flow = await new_flow(tams)
    assert (await same_as_get(tams, f"/flows/{flow['id']}/tags/missing")).status_code == 404


async def test_put_flows_id_tags_name_204_sets_string_and_array_values(tams: httpx.AsyncClient) -> None:
    """Tag names and values are URL-encoded in the path; values are a string or an array of strings."""
    flow = await new_flow(tams, tags={"keep": "me"})
    base = f"/flows/{flow['id']}/tags"
    assert (await tams.put(f"{base}/genre", json=["news", "sport"])).status_code == 204
    assert (await tams.put(f"{base}/owner", json="bbc")).status_code == 204
    assert (await tams.put(f"{base}/a%20b", json="spaced")).status_code == 204
    assert (await tams.get(base)).json() == {"keep": "me", "genre": ["news", "sport"], "owner": "bbc",
                                              "a b": "spaced"}


async def test_put_flows_id_tags_name_400_value_not_string_or_string_array(tams: httpx.AsyncClient) -> None:
    flow = await new_flow(tams)
    for value in (5, {"a": "b"}, [1], None):
        assert (await tams.put(f"/flows/{flow['id']}/tags/bad", json=value)).status_code == 400, value


async def test_put_flows_id_tags_name_403_read_only(tams: httpx.AsyncClient) -> None:
    flow = await read_only_flow(tams)
    assert (await tams.put(f"/flows/{flow['id']}/tags/x", json="y")).status_code == 403


async def test_put_flows_id_tags_name_404_unknown_flow(tams: httpx.AsyncClient) -> None:
    assert (await tams.put(f"/flows/{UNKNOWN_ID}/tags/x", json="y")).status_code == 404


async def test_delete_flows_id_tags_name_204_removes_only_that_tag(tams: httpx.AsyncClient) -> None:
    flow = await new_flow(tams, tags={"keep": "me", "drop": ["a", "b"]})
    assert (await tams.delete(f"/flows/{flow['id']}/tags/drop")).status_code == 204
    assert (await tams.get(f"/flows/{flow['id']}/tags")).json() == {"keep": "me"}


async def test_delete_flows_id_tags_name_403_read_only(tams: httpx.AsyncClient) -> None:
    flow = await read_only_flow(tams, tags={"keep": "me"})
    assert (await tams.delete(f"/flows/{flow['id']}/tags/keep")).status_code == 403


async def test_delete_flows_id_tags_name_404_unknown_tag_or_flow(tams: httpx.AsyncClient) -> None:
    flow = await new_flow(tams)
    assert (await tams.delete(f"/flows/{flow['id']}/tags/missing")).status_code == 404
    assert (await tams.delete(f"/flows/{UNKNOWN_ID}/tags/missing")).status_code == 404


# -- read_only -------------------------------------------------------------------------------


async def test_get_flows_id_read_only_200_false_when_unset(tams: httpx.AsyncClient) -> None:
    """Reading chosen (README): `read_only` unset reads as `false`."""
    flow = await new_flow(tams)
    response = await tams.get(f"/flows/{flow['id']}/read_only")
    assert response.status_code == 200 and response.json() is False


async def test_get_flows_id_read_only_404_unknown_flow(tams: httpx.AsyncClient) -> None:
    assert (await tams.get(f"/flows/{UNKNOWN_ID}/read_only")).status_code == 404


async def test_head_flows_id_read_only_200_same_headers_as_get_without_body(tams: httpx.AsyncClient) -> None:
    flow = await new_flow(tams)
    assert (await same_as_get(tams, f"/flows/{flow['id']}/read_only")).status_code == 200


async def test_head_flows_id_read_only_404_unknown_flow(tams: httpx.AsyncClient) -> None:
    assert (await same_as_get(tams, f"/flows/{UNKNOWN_ID}/read_only")).status_code == 404


async def test_put_flows_id_read_only_204_blocks_writes_until_cleared(tams: httpx.AsyncClient) -> None:
    """Checklist C.18: `read_only=true` gives 403 on metadata, segment and storage writes and on delete; only
    `read_only` itself stays writable."""
    flow = await new_flow(tams)
    base = f"/flows/{flow['id']}"
    assert (await tams.put(f"{base}/read_only", json=True)).status_code == 204
    assert (await tams.get(f"{base}/read_only")).json() is True
    assert (await tams.get(base)).json()["read_only"] is True
    assert (await tams.put(f"{base}/label", json="nope")).status_code == 403
    assert (await tams.post(f"{base}/storage", json={"limit": 1})).status_code == 403
    assert (await tams.post(f"{base}/segments", json={"object_id": uid(), "timerange": "[0:0_1:0)"})).status_code \
        == 403
    assert (await tams.delete(f"{base}/segments")).status_code == 403
    assert (await tams.delete(base)).status_code == 403
    assert (await tams.put(f"{base}/read_only", json=False)).status_code == 204
    assert (await tams.put(f"{base}/label", json="yes")).status_code == 204


async def test_put_flows_id_read_only_400_not_a_boolean(tams: httpx.AsyncClient) -> None:
    flow = await new_flow(tams)
    for value in ("true", 1, None, [True]):
        assert (await tams.put(f"/flows/{flow['id']}/read_only", json=value)).status_code == 400, value


async def test_put_flows_id_read_only_404_unknown_flow(tams: httpx.AsyncClient) -> None:
    assert (await tams.put(f"/flows/{UNKNOWN_ID}/read_only", json=True)).status_code == 404


# -- flow_collection -------------------------------------------------------------------------


async def collection_members(tams: httpx.AsyncClient, count: int) -> list[dict[str, Any]]:
    return [await (new_flow(tams) if i % 2 == 0 else put_flow(tams, audio_flow())) for i in range(count)]


async def test_put_flows_id_flow_collection_204_official_example_keeps_order(tams: httpx.AsyncClient) -> None:
    """`flow-collection-put.json` with its member ids mapped to new flows; the collection is ordered."""
    items = example("flow-collection-put.json")
    members = await collection_members(tams, len(items))
    multi = await put_flow(tams, multi_flow())
    body = [{**item, "id": member["id"]} for item, member in zip(items, members[::-1], strict=True)]
    response = await tams.put(f"/flows/{multi['id']}/flow_collection", json=body)
    assert response.status_code == 204, response.text
    assert [m["id"] for m in (await tams.get(f"/flows/{multi['id']}/flow_collection")).json()] == \
        [m["id"] for m in members[::-1]]


async def test_put_flows_id_flow_collection_204_infers_collected_by_and_source_collections(
        tams: httpx.AsyncClient) -> None:
    """Checklist C.20, B.12: members get `collected_by`; the multi's source gets `source_collection` (with the
    roles) and the members' sources `collected_by`."""
    video, audio = await collection_members(tams, 2)
    multi = await put_flow(tams, multi_flow())
    body = [{"id": video["id"], "role": "picture"}, {"id": audio["id"], "role": "sound"}]
    assert (await tams.put(f"/flows/{multi['id']}/flow_collection", json=body)).status_code == 204
    assert (await tams.get(f"/flows/{video['id']}")).json()["collected_by"] == [multi["id"]]
    source = (await tams.get(f"/sources/{multi['source_id']}")).json()
    assert {(c["id"], c.get("role")) for c in source["source_collection"]} == {
        (video["source_id"], "picture"), (audio["source_id"], "sound")}
    assert (await tams.get(f"/sources/{audio['source_id']}")).json()["collected_by"] == [multi["source_id"]]


async def test_put_flows_id_flow_collection_400_members_must_exist_and_be_other_flows(
        tams: httpx.AsyncClient) -> None:
    multi = await put_flow(tams, multi_flow())
    for body in ([{"id": uid()}], [{"id": multi["id"]}], [{"role": "x"}], {"id": uid()}, [{"id": "not-a-uuid"}]):
        assert (await tams.put(f"/flows/{multi['id']}/flow_collection", json=body)).status_code == 400, body


async def test_put_flows_id_flow_collection_403_read_only(tams: httpx.AsyncClient) -> None:
    (member,) = await collection_members(tams, 1)
    multi = await put_flow(tams, multi_flow(read_only=True))
    assert (await tams.put(f"/flows/{multi['id']}/flow_collection", json=[{"id": member["id"]}])).status_code == 403


async def test_put_flows_id_flow_collection_404_unknown_flow(tams: httpx.AsyncClient) -> None:
    (member,) = await collection_members(tams, 1)
    assert (await tams.put(f"/flows/{UNKNOWN_ID}/flow_collection", json=[{"id": member["id"]}])).status_code == 404


async def test_get_flows_id_flow_collection_200_lists_members_with_roles(tams: httpx.AsyncClient) -> None:
    (member,) = await collection_members(tams, 1)
    multi = await put_flow(tams, multi_flow())
    await tams.put(f"/flows/{multi['id']}/flow_collection", json=[{"id": member["id"], "role": "main"}])
    response = await tams.get(f"/flows/{multi['id']}/flow_collection")
    assert response.status_code == 200 and response.json() == [{"id": member["id"], "role": "main"}]


async def test_get_flows_id_flow_collection_404_unknown_flow(tams: httpx.AsyncClient) -> None:
    assert (await tams.get(f"/flows/{UNKNOWN_ID}/flow_collection")).status_code == 404


async def test_head_flows_id_flow_collection_200_same_headers_as_get_without_body(tams: httpx.AsyncClient) -> None:
    (member,) = await collection_members(tams, 1)
    multi = await put_flow(tams, multi_flow([member["id"]]))
    assert (await same_as_get(tams, f"/flows/{multi['id']}/flow_collection")).status_code == 200


async def test_head_flows_id_flow_collection_404_unknown_flow(tams: httpx.AsyncClient) -> None:
    assert (await same_as_get(tams, f"/flows/{UNKNOWN_ID}/flow_collection")).status_code == 404


async def test_delete_flows_id_flow_collection_204_removes_collection_and_back_references(
        tams: httpx.AsyncClient) -> None:
    (member,) = await collection_members(tams, 1)
    multi = await put_flow(tams, multi_flow([member["id"]]))
    assert (await tams.delete(f"/flows/{multi['id']}/flow_collection")).status_code == 204
    assert "collected_by" not in (await tams.get(f"/flows/{member['id']}")).json()
    assert "flow_collection" not in (await tams.get(f"/flows/{multi['id']}")).json()
    assert "collected_by" not in (await tams.get(f"/sources/{member['source_id']}")).json()


async def test_delete_flows_id_flow_collection_403_read_only(tams: httpx.AsyncClient) -> None:
    (member,) = await collection_members(tams, 1)
    multi = await put_flow(tams, multi_flow([member["id"]], read_only=True))
    assert (await tams.delete(f"/flows/{multi['id']}/flow_collection")).status_code == 403


async def test_delete_flows_id_flow_collection_404_unknown_flow(tams: httpx.AsyncClient) -> None:
    assert (await tams.delete(f"/flows/{UNKNOWN_ID}/flow_collection")).status_code == 404


async def test_put_flows_id_label_204_changes_metadata_version(tams: httpx.AsyncClient) -> None:
    """Checklist C.19: a sub-resource write is a metadata change like any other."""
    flow = await put_flow(tams, video_flow())
    before = (await tams.get(f"/flows/{flow['id']}")).json()["metadata_version"]
    await tams.put(f"/flows/{flow['id']}/label", json="changed")
    assert (await tams.get(f"/flows/{flow['id']}")).json()["metadata_version"] != before
