"""`created_by` and `updated_by` come from the principal the request acts for (HTTP Basic user name here)."""

from __future__ import annotations

import uuid

import httpx

from api.principal import principal_from_headers
from tests.conftest import video_flow


def basic(user: str) -> dict[str, str]:
    import base64

    return {"Authorization": "Basic " + base64.b64encode(f"{user}:secret".encode()).decode()}


async def test_created_by_is_the_creator_and_updated_by_the_last_writer(http: httpx.AsyncClient) -> None:
    flow = video_flow(created_by="someone else", updated_by="someone else")
    assert (await http.put(f"/flows/{flow['id']}", json=flow, headers=basic("alice"))).status_code == 201
    stored = (await http.get(f"/flows/{flow['id']}")).json()
    assert (stored["created_by"], stored["updated_by"]) == ("alice", "alice")

    assert (await http.put(f"/flows/{flow['id']}/label", json="relabelled", headers=basic("bob"))).status_code == 204
    stored = (await http.get(f"/flows/{flow['id']}")).json()
    assert (stored["created_by"], stored["updated_by"], stored["label"]) == ("alice", "bob", "relabelled")

    assert (await http.put(f"/flows/{flow['id']}", json=flow, headers=basic("carol"))).status_code == 204
    stored = (await http.get(f"/flows/{flow['id']}")).json()
    assert (stored["created_by"], stored["updated_by"]) == ("alice", "carol")

    source_id = flow["source_id"]
    assert (await http.put(f"/sources/{source_id}/label", json="src", headers=basic("dave"))).status_code == 204
    assert (await http.get(f"/sources/{source_id}")).json()["updated_by"] == "dave"


async def test_without_a_principal_the_clients_values_stand(http: httpx.AsyncClient) -> None:
    flow = video_flow(created_by="replicated-origin", updated_by="replicated-editor")
    assert (await http.put(f"/flows/{flow['id']}", json=flow)).status_code == 201
    stored = (await http.get(f"/flows/{flow['id']}")).json()
    assert (stored["created_by"], stored["updated_by"]) == ("replicated-origin", "replicated-editor")


async def test_a_profile_records_who_created_it(http: httpx.AsyncClient) -> None:
    profile_id = str(uuid.uuid4())
    body = {"id": profile_id, "label": "hd", "flow_metadata": {
        "format": "urn:x-nmos:format:video", "codec": "video/h264", "container": "video/mp2t",
        "essence_parameters": {"frame_width": 1920, "frame_height": 1080, "frame_rate": {"numerator": 25}}}}
    created = await http.post(f"/service/profiles/{profile_id}", json=body, headers=basic("erin"))
    assert created.status_code == 201, created.text
    assert created.json()["created_by"] == "erin"


def test_a_trusted_proxy_header_wins_over_basic_credentials() -> None:
    headers = {"x-forwarded-user": "proxy-user", **{k.lower(): v for k, v in basic("basic-user").items()}}
    assert principal_from_headers(headers, "X-Forwarded-User") == "proxy-user"
    assert principal_from_headers(headers, "") == "basic-user"
    assert principal_from_headers({"authorization": "Basic !!notbase64"}, "") is None
    assert principal_from_headers({"authorization": "Bearer abc"}, "") is None
