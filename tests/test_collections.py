"""Flow collections, and the collections inferred from them: collected_by, source_collection."""

from __future__ import annotations

import uuid

import httpx

from tests.conftest import video_flow
from tests.test_resources import assert_valid


def audio_flow() -> dict:
    return {"id": str(uuid.uuid4()), "source_id": str(uuid.uuid4()), "format": "urn:x-nmos:format:audio",
            "codec": "audio/aac", "container": "video/mp2t",
            "essence_parameters": {"sample_rate": 48000, "channels": 2}}


def multi_flow(members: list[tuple[str, str]]) -> dict:
    return {"id": str(uuid.uuid4()), "source_id": str(uuid.uuid4()), "format": "urn:x-nmos:format:multi",
            "flow_collection": [{"id": member, "role": role} for member, role in members]}


async def test_collections_infer_collected_by_on_flows_and_sources(http: httpx.AsyncClient) -> None:
    video, audio = video_flow(), audio_flow()
    for flow in (video, audio):
        assert (await http.put(f"/flows/{flow['id']}", json=flow)).status_code == 201
    multi = multi_flow([(video["id"], "picture"), (audio["id"], "sound")])
    created = await http.put(f"/flows/{multi['id']}", json=multi)
    assert created.status_code == 201, created.text

    got_video = (await http.get(f"/flows/{video['id']}")).json()
    assert got_video["collected_by"] == [multi["id"]]
    assert_valid(got_video, "flow-get.json")
    members = (await http.get(f"/flows/{multi['id']}/flow_collection")).json()
    assert [m["id"] for m in members] == [video["id"], audio["id"]]

    multi_source = (await http.get(f"/sources/{multi['source_id']}")).json()
    assert {(c["id"], c.get("role")) for c in multi_source["source_collection"]} == {
        (video["source_id"], "picture"), (audio["source_id"], "sound")}
    assert_valid(multi_source, "source.json")
    assert (await http.get(f"/sources/{video['source_id']}")).json()["collected_by"] == [multi["source_id"]]

    collected = (await http.get("/flows", params={"collected_by_ids": multi["id"]})).json()
    assert {f["id"] for f in collected} == {video["id"], audio["id"]}
    top_level = {f["id"] for f in (await http.get("/flows", params={"collected_by_ids": "", "limit": "1000"})).json()}
    assert multi["id"] in top_level and video["id"] not in top_level
    sources = (await http.get("/sources", params={"collected_by_ids": multi["source_id"]})).json()
    assert {s["id"] for s in sources} == {video["source_id"], audio["source_id"]}


async def test_flow_collection_members_must_exist_and_can_be_replaced(http: httpx.AsyncClient) -> None:
    video = video_flow()
    await http.put(f"/flows/{video['id']}", json=video)
    multi = multi_flow([])
    await http.put(f"/flows/{multi['id']}", json=multi)
    missing = await http.put(f"/flows/{multi['id']}/flow_collection", json=[{"id": str(uuid.uuid4())}])
    assert missing.status_code == 400 and "no such flows" in missing.json()["summary"]
    itself = await http.put(f"/flows/{multi['id']}/flow_collection", json=[{"id": multi["id"]}])
    assert itself.status_code == 400
    assert (await http.put(f"/flows/{multi['id']}/flow_collection", json=[{"id": video["id"]}])).status_code == 204
    assert (await http.get(f"/flows/{video['id']}")).json()["collected_by"] == [multi["id"]]
    assert (await http.delete(f"/flows/{multi['id']}/flow_collection")).status_code == 204
    assert "collected_by" not in (await http.get(f"/flows/{video['id']}")).json()
