"""Profiles: immutable technical fields that flows are created from."""

from __future__ import annotations

import json
import uuid

import httpx

from tests.conftest import SPEC, video_flow
from tests.test_resources import assert_valid


def official_profile() -> dict:
    profile = json.loads((SPEC / "api" / "examples" / "profile-post-201.json").read_text())
    profile.pop("created", None)
    profile["id"] = str(uuid.uuid4())
    return profile


async def test_profiles_are_created_once_and_never_changed(http: httpx.AsyncClient) -> None:
    profile = official_profile()
    created = await http.post(f"/service/profiles/{profile['id']}", json=profile)
    assert created.status_code == 201, created.text
    assert_valid(created.json(), "profile.json")
    assert (await http.get(f"/service/profiles/{profile['id']}")).json()["flow_metadata"]["codec"] == "video/h264"
    again = await http.post(f"/service/profiles/{profile['id']}", json={**profile, "label": "changed"})
    assert again.status_code == 400 and "cannot be changed" in again.json()["summary"]
    listed = (await http.get("/service/profiles", params={"label": profile["label"]})).json()
    assert profile["id"] in [p["id"] for p in listed]
    assert (await http.get(f"/service/profiles/{uuid.uuid4()}")).status_code == 404
    multi = {**official_profile(), "flow_metadata": {"format": "urn:x-nmos:format:multi"}}
    assert (await http.post(f"/service/profiles/{multi['id']}", json=multi)).status_code == 400


async def test_flow_from_a_profile_gets_its_fields_and_can_be_unlinked(http: httpx.AsyncClient) -> None:
    profile = official_profile()
    await http.post(f"/service/profiles/{profile['id']}", json=profile)
    flow_id, source_id = str(uuid.uuid4()), str(uuid.uuid4())
    created = await http.put(f"/flows/{flow_id}", json={"id": flow_id, "source_id": source_id,
                                                        "profile_id": profile["id"], "label": "from profile"})
    assert created.status_code == 201, created.text
    flow = (await http.get(f"/flows/{flow_id}")).json()
    assert flow["codec"] == "video/h264" and flow["essence_parameters"]["frame_width"] == 1280
    assert flow["profile_id"] == profile["id"] and flow["label"] == "from profile"
    assert_valid(flow, "flow-get.json")
    assert [f["id"] for f in (await http.get("/flows", params={"profile_id": profile["id"]})).json()] == [flow_id]
    assert (await http.put(f"/flows/{flow_id}/avg_bit_rate", json=100)).status_code == 400

    mixed = await http.put(f"/flows/{flow_id}", json={"id": flow_id, "source_id": source_id,
                                                      "profile_id": profile["id"], "codec": "video/h265"})
    assert mixed.status_code == 400
    other = str(uuid.uuid4())
    unknown = await http.put(f"/flows/{other}", json={"id": other, "source_id": source_id,
                                                      "profile_id": str(uuid.uuid4())})
    assert unknown.status_code == 400 and "does not exist" in unknown.json()["summary"]

    unlinked = video_flow(flow_id, source_id, profile_id="")
    assert (await http.put(f"/flows/{flow_id}", json=unlinked)).status_code == 204
    flow = (await http.get(f"/flows/{flow_id}")).json()
    assert "profile_id" not in flow and flow["essence_parameters"]["frame_width"] == 1920
    assert (await http.put(f"/flows/{flow_id}/avg_bit_rate", json=100)).status_code == 204
