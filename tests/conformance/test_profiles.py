"""`/service/profiles`, `/service/profiles/{profileId}`, and flows created from profiles
(digest §1.2, §6.4; checklist G.40, G.41, C.17).

Profiles are immutable: there is no PUT or DELETE, and POSTing an existing profile is a 400.
"""

from __future__ import annotations

import uuid
from typing import Any

import httpx

from tests.conformance.helpers import (
    MALFORMED_ID,
    UNKNOWN_ID,
    example,
    ids,
    same_as_get,
    uid,
)
from tests.conftest import video_flow


def official_profile(name: str = "profile-put.json", **changes: Any) -> dict[str, Any]:
    """An official profile example with a fresh id (and without the server-kept `created`)."""
    profile = {**example(name), "id": uid(), **changes}
    profile.pop("created", None)
    profile.pop("created_by", None)
    return profile


async def create(tams: httpx.AsyncClient, profile: dict[str, Any]) -> dict[str, Any]:
    response = await tams.post(f"/service/profiles/{profile['id']}", json=profile)
    assert response.status_code == 201, response.text
    return response.json()


# -- POST /service/profiles/{profileId} ------------------------------------------------------


async def test_post_service_profiles_id_201_official_example_echoed_with_created(tams: httpx.AsyncClient) -> None:
    """`profile-put.json` is accepted; 201 echoes the profile with the server's `created` (the hook validates
    it as profile.json), as in `profile-post-201.json`."""
    profile = official_profile()
    created = await create(tams, profile)
    assert "created" in created
    expected = {k: v for k, v in example("profile-post-201.json").items() if k not in ("created", "created_by")}
    assert {k: v for k, v in created.items() if k not in ("created", "created_by")} == {**expected,
                                                                                        "id": profile["id"]}


async def test_post_service_profiles_id_201_official_image_profile(tams: httpx.AsyncClient) -> None:
    profile = official_profile("profile-get-200-image.json")
    assert (await create(tams, profile))["flow_metadata"]["format"] == "urn:x-tam:format:image"


async def test_post_service_profiles_id_400_existing_profile_is_immutable(tams: httpx.AsyncClient) -> None:
    profile = official_profile()
    await create(tams, profile)
    for body in (profile, {**profile, "label": "changed"}):
        response = await tams.post(f"/service/profiles/{profile['id']}", json=body)
        assert response.status_code == 400
    assert (await tams.get(f"/service/profiles/{profile['id']}")).json()["label"] == profile["label"]


async def test_post_service_profiles_id_400_invalid_profile(tams: httpx.AsyncClient) -> None:
    """Profiles never describe multi flows; `flow_metadata` is required and validated; the body id must match."""
    profile = official_profile()
    no_rate = {**profile["flow_metadata"], "essence_parameters": {"frame_width": 1, "frame_height": 1}}
    for body in ({**profile, "flow_metadata": {"format": "urn:x-nmos:format:multi"}},
                 {k: v for k, v in profile.items() if k != "flow_metadata"},
                 {**profile, "flow_metadata": no_rate}, {**profile, "id": uid()}, [profile]):
        assert (await tams.post(f"/service/profiles/{profile['id']}", json=body)).status_code == 400, body
    assert (await tams.get(f"/service/profiles/{profile['id']}")).status_code == 404


async def test_post_service_profiles_id_404_malformed_profile_id(tams: httpx.AsyncClient) -> None:
    """Reading chosen (README): a malformed id answers 404 ("The requested Profile ID in the path is invalid")."""
    profile = official_profile(id=MALFORMED_ID)
    assert (await tams.post(f"/service/profiles/{MALFORMED_ID}", json=profile)).status_code == 404


# -- GET/HEAD /service/profiles/{profileId} --------------------------------------------------


async def test_get_service_profiles_id_200_returns_the_profile(tams: httpx.AsyncClient) -> None:
    profile = official_profile()
    await create(tams, profile)
    got = (await tams.get(f"/service/profiles/{profile['id']}")).json()
    assert got["flow_metadata"] == profile["flow_metadata"] and got["tags"] == profile["tags"]


async def test_get_service_profiles_id_404_unknown_or_malformed_id(tams: httpx.AsyncClient) -> None:
    assert (await tams.get(f"/service/profiles/{UNKNOWN_ID}")).status_code == 404
    assert (await tams.get(f"/service/profiles/{MALFORMED_ID}")).status_code == 404


async def test_head_service_profiles_id_200_same_headers_as_get_without_body(tams: httpx.AsyncClient) -> None:
    profile = official_profile()
    await create(tams, profile)
    assert (await same_as_get(tams, f"/service/profiles/{profile['id']}")).status_code == 200


async def test_head_service_profiles_id_404_unknown_profile(tams: httpx.AsyncClient) -> None:
    assert (await same_as_get(tams, f"/service/profiles/{UNKNOWN_ID}")).status_code == 404


# -- GET/HEAD /service/profiles --------------------------------------------------------------


async def test_get_service_profiles_200_filters_by_format_codec_and_label(tams: httpx.AsyncClient) -> None:
    mark = uuid.uuid4().hex
    video = official_profile(label=f"video-{mark}")
    image = official_profile("profile-get-200-image.json", label=f"image-{mark}")
    await create(tams, video)
    await create(tams, image)
    assert await ids(tams, "/service/profiles", label=f"video-{mark}") == [video["id"]]
    by_format = await ids(tams, "/service/profiles", format="urn:x-tam:format:image")
    assert image["id"] in by_format and video["id"] not in by_format
    by_codec = await ids(tams, "/service/profiles", codec="video/h264")
    assert video["id"] in by_codec and image["id"] not in by_codec


async def test_get_service_profiles_200_pages_follow_link(tams: httpx.AsyncClient) -> None:
    """Paging with `Link`, `X-Paging-Limit` and `X-Paging-NextKey` (the only headers documented here)."""
    label = f"paged-{uuid.uuid4().hex}"
    made = {(await create(tams, official_profile(label=label)))["id"] for _ in range(3)}
    seen: list[str] = []
    url: str | None = f"/service/profiles?label={label}&limit=2"
    pages = 0
    while url:
        response = await tams.get(url)
        assert response.headers["X-Paging-Limit"] == "2"
        seen += [p["id"] for p in response.json()]
        pages += 1
        url = response.links.get("next", {}).get("url")
    assert sorted(seen) == sorted(made) and pages == 2


async def test_get_service_profiles_400_for_format_outside_its_enum(tams: httpx.AsyncClient) -> None:
    """`format` is declared as `content-format.json` (an enum) and 400 is documented for invalid query options;
    it is the only query value here with a declared constraint besides `limit` (never an error, README)."""
    response = await tams.get("/service/profiles", params={"format": "urn:x-nmos:format:smell"})
    assert response.status_code == 400


async def test_head_service_profiles_200_paging_headers_without_body(tams: httpx.AsyncClient) -> None:
    head = await same_as_get(tams, "/service/profiles", limit="1")
    assert head.status_code == 200 and head.headers["X-Paging-Limit"] == "1"


async def test_head_service_profiles_400_for_format_outside_its_enum(tams: httpx.AsyncClient) -> None:
    assert (await same_as_get(tams, "/service/profiles", format="urn:x-nmos:format:smell")).status_code == 400


# -- flows from profiles ---------------------------------------------------------------------


async def test_put_flows_id_201_official_profile_example_takes_technical_fields(tams: httpx.AsyncClient) -> None:
    """`flow-put-profile.json` (ids replaced, its profile created from `profile-put.json`): the flow reads as a
    fully specified flow with the profile's technical fields, `avg_bit_rate` included."""
    profile = official_profile()
    await create(tams, profile)
    flow = {**example("flow-put-profile.json"), "id": uid(), "source_id": uid(), "profile_id": profile["id"]}
    response = await tams.put(f"/flows/{flow['id']}", json=flow)
    assert response.status_code == 201, response.text
    got = (await tams.get(f"/flows/{flow['id']}")).json()
    assert got["profile_id"] == profile["id"] and got["label"] == flow["label"] and got["tags"] == flow["tags"]
    for key in ("format", "codec", "container", "avg_bit_rate", "essence_parameters"):
        assert got[key] == profile["flow_metadata"][key], key


async def test_put_flows_id_400_profile_id_with_technical_fields(tams: httpx.AsyncClient) -> None:
    profile = official_profile()
    await create(tams, profile)
    flow_id = uid()
    body = {"id": flow_id, "source_id": uid(), "profile_id": profile["id"], "codec": "video/h265"}
    assert (await tams.put(f"/flows/{flow_id}", json=body)).status_code == 400


async def test_put_flows_id_400_unknown_profile_id(tams: httpx.AsyncClient) -> None:
    flow_id = uid()
    body = {"id": flow_id, "source_id": uid(), "profile_id": UNKNOWN_ID}
    assert (await tams.put(f"/flows/{flow_id}", json=body)).status_code == 400


async def test_put_flows_id_204_empty_profile_id_unlinks_and_allows_technical_changes(
        tams: httpx.AsyncClient) -> None:
    profile = official_profile()
    await create(tams, profile)
    flow_id, source_id = uid(), uid()
    await tams.put(f"/flows/{flow_id}", json={"id": flow_id, "source_id": source_id, "profile_id": profile["id"]})
    assert (await tams.put(f"/flows/{flow_id}", json=video_flow(flow_id, source_id, profile_id=""))).status_code == 204
    got = (await tams.get(f"/flows/{flow_id}")).json()
    assert "profile_id" not in got and got["essence_parameters"]["frame_width"] == 1920
    assert (await tams.put(f"/flows/{flow_id}/avg_bit_rate", json=100)).status_code == 204


async def test_put_flows_id_avg_bit_rate_400_profile_linked_flow(tams: httpx.AsyncClient) -> None:
    """`avg_bit_rate` comes from the profile; changing it directly would break the link (400)."""
    profile = official_profile()
    await create(tams, profile)
    flow_id = uid()
    await tams.put(f"/flows/{flow_id}", json={"id": flow_id, "source_id": uid(), "profile_id": profile["id"]})
    assert (await tams.put(f"/flows/{flow_id}/avg_bit_rate", json=100)).status_code == 400
    assert (await tams.get(f"/flows/{flow_id}/avg_bit_rate")).json() == profile["flow_metadata"]["avg_bit_rate"]


async def test_get_flows_200_filters_by_profile_id(tams: httpx.AsyncClient) -> None:
    profile = official_profile()
    await create(tams, profile)
    flow_id = uid()
    await tams.put(f"/flows/{flow_id}", json={"id": flow_id, "source_id": uid(), "profile_id": profile["id"]})
    assert await ids(tams, "/flows", profile_id=profile["id"]) == [flow_id]
