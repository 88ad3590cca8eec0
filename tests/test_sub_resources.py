"""Flow and source sub-resources: one field at a time, written through the owning agent."""

from __future__ import annotations

import httpx

from tests.conftest import video_flow


async def new_flow(http: httpx.AsyncClient, **extra: object) -> dict:
    flow = video_flow(**extra)
    assert (await http.put(f"/flows/{flow['id']}", json=flow)).status_code == 201
    return flow


async def test_flow_tags_accept_strings_and_arrays_and_can_be_deleted(http: httpx.AsyncClient) -> None:
    flow = await new_flow(http, tags={"keep": "me"})
    base = f"/flows/{flow['id']}/tags"
    assert (await http.put(f"{base}/genre", json=["news", "sport"])).status_code == 204
    assert (await http.put(f"{base}/owner", json="bbc")).status_code == 204
    assert (await http.get(base)).json() == {"keep": "me", "genre": ["news", "sport"], "owner": "bbc"}
    assert (await http.get(f"{base}/genre")).json() == ["news", "sport"]
    assert (await http.delete(f"{base}/owner")).status_code == 204
    assert (await http.get(f"{base}/owner")).status_code == 404
    assert (await http.delete(f"{base}/owner")).status_code == 404
    assert (await http.put(f"{base}/bad", json=5)).status_code == 400


async def test_flow_label_description_and_bit_rates_round_trip_and_validate(http: httpx.AsyncClient) -> None:
    flow = await new_flow(http)
    base = f"/flows/{flow['id']}"
    assert (await http.get(f"{base}/label")).status_code == 404
    for field, value in (("label", "studio 1"), ("description", "main feed"), ("max_bit_rate", 8000),
                         ("avg_bit_rate", 6000)):
        assert (await http.put(f"{base}/{field}", json=value)).status_code == 204, field
        assert (await http.get(f"{base}/{field}")).json() == value
    assert (await http.get(base)).json()["label"] == "studio 1"
    assert (await http.put(f"{base}/max_bit_rate", json=-1)).status_code == 400
    assert (await http.put(f"{base}/label", json=12)).status_code == 400
    assert (await http.delete(f"{base}/description")).status_code == 204
    assert "description" not in (await http.get(base)).json()


async def test_read_only_flow_refuses_writes_until_read_only_is_cleared(http: httpx.AsyncClient) -> None:
    flow = await new_flow(http)
    base = f"/flows/{flow['id']}"
    assert (await http.get(f"{base}/read_only")).json() is False
    assert (await http.put(f"{base}/read_only", json=True)).status_code == 204
    assert (await http.put(f"{base}/label", json="nope")).status_code == 403
    assert (await http.put(f"{base}/tags/x", json="y")).status_code == 403
    assert (await http.post(f"{base}/storage", json={"limit": 1})).status_code == 403
    assert (await http.put(base, json={**flow, "label": "nope"})).status_code == 403
    assert (await http.put(f"{base}/read_only", json=False)).status_code == 204
    assert (await http.put(f"{base}/label", json="yes")).status_code == 204


async def test_sources_are_created_with_their_flow_and_editable(http: httpx.AsyncClient) -> None:
    flow = await new_flow(http)
    source_id = flow["source_id"]
    source = (await http.get(f"/sources/{source_id}")).json()
    assert source["id"] == source_id and source["format"] == "urn:x-nmos:format:video"
    label = f"camera {source_id}"  # unique: other tests share the stack
    assert (await http.put(f"/sources/{source_id}/label", json=label)).status_code == 204
    assert (await http.put(f"/sources/{source_id}/tags/site", json="london")).status_code == 204
    source = (await http.get(f"/sources/{source_id}")).json()
    assert source["label"] == label and source["tags"] == {"site": "london"}
    listed = (await http.get("/sources", params={"label": label})).json()
    assert [s["id"] for s in listed] == [source_id]
    assert (await http.get("/sources/3fa85f64-5717-4562-b3fc-2c963f66afa6")).status_code == 404
    assert (await http.get("/sources/not-a-uuid")).status_code == 404


async def test_metadata_version_changes_with_metadata_and_keeps_a_supplied_value(http: httpx.AsyncClient) -> None:
    flow = await new_flow(http)
    base = f"/flows/{flow['id']}"
    first = (await http.get(base)).json()["metadata_version"]
    await http.put(f"{base}/label", json="changed")
    second = (await http.get(base)).json()["metadata_version"]
    assert second != first
    await http.delete(f"{base}/label")
    assert (await http.get(base)).json()["metadata_version"] == first  # same metadata, same version
    replicated = video_flow(metadata_version="from-the-origin-store")
    await http.put(f"/flows/{replicated['id']}", json=replicated)
    assert (await http.get(f"/flows/{replicated['id']}")).json()["metadata_version"] == "from-the-origin-store"
