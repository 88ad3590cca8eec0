"""`/flows/{flowId}/segments`: GET, HEAD, POST and DELETE (digest §1.6-1.8, §2.2-2.3, §3.3;
checklist D.22-D.28, E.37).

The 202 of a large segment delete is in test_delete_requests.py; object records and reference
counting are in test_objects.py.
"""

from __future__ import annotations

import httpx

from tests.conformance.helpers import (
    MALFORMED_ID,
    UNKNOWN_ID,
    add_segments,
    allocate,
    example,
    flow_with_segments,
    multi_flow,
    new_flow,
    put_flow,
    same_as_get,
    timeranges,
    uid,
)
from tests.conftest import video_flow

INIT_ESSENCE = {"frame_width": 1920, "frame_height": 1080, "frame_rate": {"numerator": 25}, "init_segments": True}


async def post(tams: httpx.AsyncClient, flow_id: str, body: object) -> httpx.Response:
    return await tams.post(f"/flows/{flow_id}/segments", json=body)


async def segments(tams: httpx.AsyncClient, flow_id: str, **params: str) -> list[dict]:
    response = await tams.get(f"/flows/{flow_id}/segments", params=params)
    assert response.status_code == 200, response.text
    return response.json()


# -- POST ------------------------------------------------------------------------------------


async def test_post_flows_id_segments_201_official_example_single_segment(tams: httpx.AsyncClient) -> None:
    """`flow-segment-post.json` (one segment, not an array), with its `object_id` replaced by one this flow
    allocated (the example's id was never allocated here). 201 has no body."""
    flow = await new_flow(tams)
    (object_id,) = await allocate(tams, flow["id"])
    body = {**example("flow-segment-post.json"), "object_id": object_id}
    response = await post(tams, flow["id"], body)
    assert response.status_code == 201, response.text
    assert response.content == b""
    (segment,) = await segments(tams, flow["id"])
    assert segment["object_id"] == object_id and segment["timerange"] == body["timerange"]


async def test_post_flows_id_segments_201_array_keeps_timing_fields(tams: httpx.AsyncClient) -> None:
    """An array body (ADR-0029); `ts_offset`, `last_duration`, `key_frame_count` and the deprecated
    `sample_offset`/`sample_count` are stored and returned (checklist D.24)."""
    flow = await new_flow(tams)
    first, second = await allocate(tams, flow["id"], 2)
    body = [{"object_id": first, "timerange": "[10:0_12:0)", "ts_offset": "10:0", "last_duration": "0:40000000",
             "key_frame_count": 2, "sample_offset": 0, "sample_count": 50},
            {"object_id": second, "timerange": "[12:0_14:0)"}]
    assert (await post(tams, flow["id"], body)).status_code == 201
    got = await segments(tams, flow["id"])
    assert got[0]["object_id"] == first
    for key in ("timerange", "ts_offset", "last_duration", "key_frame_count", "sample_offset", "sample_count"):
        assert got[0][key] == body[0][key], key
    assert got[1]["timerange"] == "[12:0_14:0)"


async def test_post_flows_id_segments_201_updates_flow_timerange_and_segments_updated(
        tams: httpx.AsyncClient) -> None:
    """Checklist D.28."""
    flow = await new_flow(tams)
    assert "segments_updated" not in (await tams.get(f"/flows/{flow['id']}")).json()
    await add_segments(tams, flow["id"], ["[3:0_4:0)"])
    got = (await tams.get(f"/flows/{flow['id']}", params={"include_timerange": "true"})).json()
    assert got["timerange"] == "[3:0_4:0)" and "segments_updated" in got
    await add_segments(tams, flow["id"], ["[0:0_1:0)"])
    later = (await tams.get(f"/flows/{flow['id']}", params={"include_timerange": "true"})).json()
    assert later["timerange"] == "[0:0_4:0)" and later["segments_updated"] > got["segments_updated"]


async def test_post_flows_id_segments_201_adjacent_and_instantaneous_segments_do_not_overlap(
        tams: httpx.AsyncClient) -> None:
    """Clusivity: `[1:0_2:0)` then `[2:0]` (the edge case the spec names) then `(2:0_3:0)`-like neighbours."""
    flow = await new_flow(tams)
    await add_segments(tams, flow["id"], ["[1:0_2:0)", "[2:0]", "[2:1_3:0)"])
    assert await timeranges(tams, flow["id"]) == ["[1:0_2:0)", "[2:0]", "[2:1_3:0)"]


async def test_post_flows_id_segments_201_reuses_object_of_another_flow_inside_its_timerange(
        tams: httpx.AsyncClient) -> None:
    """ADR-0030: a segment may reuse part of an object registered by another flow; `timerange - ts_offset`
    must lie inside the object's timerange."""
    _, (object_id,) = await flow_with_segments(tams, ["[0:0_10:0)"])
    second = await new_flow(tams)
    reuse = {"object_id": object_id, "timerange": "[100:0_102:0)", "ts_offset": "100:0"}
    assert (await post(tams, second["id"], reuse)).status_code == 201
    (segment,) = await segments(tams, second["id"], include_object_timerange="true")
    assert segment["object_timerange"] == "[0:0_10:0)"


async def test_post_flows_id_segments_201_uncontrolled_get_urls_are_listed_as_uncontrolled(
        tams: httpx.AsyncClient) -> None:
    flow = await new_flow(tams)
    (object_id,) = await allocate(tams, flow["id"])
    mirror = {"url": "https://mirror.example/object.ts", "label": "mirror"}
    assert (await post(tams, flow["id"], {"object_id": object_id, "timerange": "[0:0_1:0)",
                                          "get_urls": [mirror]})).status_code == 201
    (segment,) = await segments(tams, flow["id"], verbose_storage="true")
    uncontrolled = [u for u in segment["get_urls"] if u["label"] == "mirror"]
    assert uncontrolled == [{**mirror, "presigned": False, "controlled": False}]


async def test_post_flows_id_segments_201_reuse_without_init_object_inherits_it(tams: httpx.AsyncClient) -> None:
    """Reading chosen (README): a segment reusing an object without `init_object_id` inherits the object's
    init object (so `init_segments` flows stay consistent)."""
    flow = await new_flow(tams, essence_parameters=INIT_ESSENCE)
    init, media = await allocate(tams, flow["id"], 2)
    assert (await post(tams, flow["id"], {"object_id": media, "timerange": "[0:0_4:0)",
                                          "init_object_id": init})).status_code == 201
    reuse = {"object_id": media, "timerange": "[10:0_12:0)", "ts_offset": "10:0"}
    assert (await post(tams, flow["id"], reuse)).status_code == 201
    got = await segments(tams, flow["id"])
    assert [s["init_object"]["object_id"] for s in got] == [init, init]


async def test_post_flows_id_segments_200_failed_segments_for_overlap(tams: httpx.AsyncClient) -> None:
    """A partial failure answers 200 with `failed_segments` (object_id, timerange, error); processing continues
    after a failing item, so the segments before and after it are created."""
    flow, _ = await flow_with_segments(tams, ["[0:0_10:0)"])
    ok_before, clash, ok_after = await allocate(tams, flow["id"], 3)
    response = await post(tams, flow["id"], [{"object_id": ok_before, "timerange": "[10:0_11:0)"},
                                             {"object_id": clash, "timerange": "[9:0_12:0)"},
                                             {"object_id": ok_after, "timerange": "[12:0_13:0)"}])
    assert response.status_code == 200, response.text
    (failed,) = response.json()["failed_segments"]
    assert failed["object_id"] == clash and failed["timerange"] == "[9:0_12:0)"
    assert {"type", "summary", "time"} <= set(failed["error"])
    assert await timeranges(tams, flow["id"]) == ["[0:0_10:0)", "[10:0_11:0)", "[12:0_13:0)"]


async def test_post_flows_id_segments_200_failed_segments_for_object_rules(tams: httpx.AsyncClient) -> None:
    """Object rules (checklist D.26), each failing one segment of the array while a valid one is created:
    an object allocated by another flow; reuse beyond the object's timerange; reuse that changes
    `key_frame_count`; an object never allocated (no external objects here)."""
    other = await new_flow(tams)
    (theirs,) = await allocate(tams, other["id"])
    flow = await new_flow(tams)
    (registered,) = await add_segments(tams, flow["id"], ["[0:0_10:0)"], key_frame_count=2)
    await tams.post(f"/flows/{flow['id']}/segments", json=[])  # an empty array is a no-op
    (fresh,) = await allocate(tams, flow["id"])
    bad = [{"object_id": theirs, "timerange": "[20:0_21:0)"},
           {"object_id": registered, "timerange": "[30:0_42:0)", "ts_offset": "30:0"},
           {"object_id": registered, "timerange": "[50:0_51:0)", "ts_offset": "50:0", "key_frame_count": 9},
           {"object_id": f"never-allocated-{uid()}", "timerange": "[60:0_61:0)"}]
    response = await post(tams, flow["id"], [*bad, {"object_id": fresh, "timerange": "[70:0_71:0)"}])
    assert response.status_code == 200, response.text
    assert [f["timerange"] for f in response.json()["failed_segments"]] == [b["timerange"] for b in bad]
    assert await timeranges(tams, flow["id"]) == ["[0:0_10:0)", "[70:0_71:0)"]


async def test_post_flows_id_segments_400_when_every_segment_fails(tams: httpx.AsyncClient) -> None:
    """Reading chosen (README): a POST where every segment fails answers 400 (with the reasons), not 200."""
    flow, _ = await flow_with_segments(tams, ["[0:0_10:0)"])
    (object_id,) = await allocate(tams, flow["id"])
    response = await post(tams, flow["id"], {"object_id": object_id, "timerange": "[5:0_6:0)"})
    assert response.status_code == 400
    assert "[5:0_6:0)" in response.json()["summary"]


async def test_post_flows_id_segments_400_flow_without_container(tams: httpx.AsyncClient) -> None:
    multi = await put_flow(tams, multi_flow())
    assert (await post(tams, multi["id"], {"object_id": uid(), "timerange": "[0:0_1:0)"})).status_code == 400


async def test_post_flows_id_segments_400_invalid_segment_json(tams: httpx.AsyncClient) -> None:
    flow = await new_flow(tams)
    (object_id,) = await allocate(tams, flow["id"])
    for body in ({"object_id": object_id}, {"timerange": "[0:0_1:0)"}, {"object_id": object_id, "timerange": "x"},
                 {"object_id": object_id, "timerange": "[0:0_1:0)", "ts_offset": "1.5"},
                 {"object_id": object_id, "timerange": "[0:0_1:0)", "last_duration": "-0:1"},
                 {"object_id": object_id, "timerange": "[0:0_1:0)", "key_frame_count": "2"},
                 "segment", [{"object_id": object_id}]):
        assert (await post(tams, flow["id"], body)).status_code == 400, body
    response = await tams.post(f"/flows/{flow['id']}/segments", content=b"[",
                               headers={"content-type": "application/json"})
    assert response.status_code == 400
    assert await timeranges(tams, flow["id"]) == []


async def test_post_flows_id_segments_400_unbounded_or_empty_timerange(tams: httpx.AsyncClient) -> None:
    flow = await new_flow(tams)
    (object_id,) = await allocate(tams, flow["id"])
    for timerange in ("[0:0_", "_", "()", "_5:0)"):
        assert (await post(tams, flow["id"], {"object_id": object_id, "timerange": timerange})).status_code == 400


async def test_post_flows_id_segments_400_uncontrolled_labels_clash(tams: httpx.AsyncClient) -> None:
    """Labels of `get_urls` must not be a storage backend's label nor repeat within the request."""
    flow = await new_flow(tams)
    (object_id,) = await allocate(tams, flow["id"])
    backend_label = (await tams.get("/service/storage-backends")).json()[0]["label"]
    for get_urls in ([{"url": "https://a.example/x", "label": backend_label}],
                     [{"url": "https://a.example/x", "label": "m"}, {"url": "https://b.example/x", "label": "m"}]):
        response = await post(tams, flow["id"], {"object_id": object_id, "timerange": "[0:0_1:0)",
                                                 "get_urls": get_urls})
        assert response.status_code == 400, get_urls


async def test_post_flows_id_segments_400_init_object_exactly_when_flow_has_init_segments(
        tams: httpx.AsyncClient) -> None:
    """Checklist E.37: `init_segments` on the flow means every segment names an init object, and vice versa."""
    with_init = await new_flow(tams, essence_parameters=INIT_ESSENCE)
    (media,) = await allocate(tams, with_init["id"])
    assert (await post(tams, with_init["id"], {"object_id": media, "timerange": "[0:0_1:0)"})).status_code == 400
    without = await new_flow(tams)
    init, media = await allocate(tams, without["id"], 2)
    response = await post(tams, without["id"], {"object_id": media, "timerange": "[0:0_1:0)", "init_object_id": init})
    assert response.status_code == 400


async def test_post_flows_id_segments_400_init_and_media_roles_are_exclusive(tams: httpx.AsyncClient) -> None:
    flow = await new_flow(tams, essence_parameters=INIT_ESSENCE)
    init, media, other = await allocate(tams, flow["id"], 3)
    assert (await post(tams, flow["id"], {"object_id": media, "timerange": "[0:0_1:0)",
                                          "init_object_id": init})).status_code == 201
    as_media = await post(tams, flow["id"], {"object_id": init, "timerange": "[1:0_2:0)", "init_object_id": init})
    assert as_media.status_code == 400
    as_init = await post(tams, flow["id"], {"object_id": other, "timerange": "[2:0_3:0)", "init_object_id": media})
    assert as_init.status_code == 400


async def test_post_flows_id_segments_403_read_only(tams: httpx.AsyncClient) -> None:
    flow = await new_flow(tams)
    (object_id,) = await allocate(tams, flow["id"])
    await tams.put(f"/flows/{flow['id']}/read_only", json=True)
    assert (await post(tams, flow["id"], {"object_id": object_id, "timerange": "[0:0_1:0)"})).status_code == 403


async def test_post_flows_id_segments_404_unknown_flow(tams: httpx.AsyncClient) -> None:
    assert (await post(tams, UNKNOWN_ID, {"object_id": uid(), "timerange": "[0:0_1:0)"})).status_code == 404
    assert (await post(tams, MALFORMED_ID, {"object_id": uid(), "timerange": "[0:0_1:0)"})).status_code == 404


# -- GET -------------------------------------------------------------------------------------


async def test_get_flows_id_segments_200_sorted_ascending_and_reversed(tams: httpx.AsyncClient) -> None:
    flow = await new_flow(tams)
    await add_segments(tams, flow["id"], ["[4:0_5:0)", "[0:0_1:0)", "[2:0_3:0)"])
    assert await timeranges(tams, flow["id"]) == ["[0:0_1:0)", "[2:0_3:0)", "[4:0_5:0)"]
    assert await timeranges(tams, flow["id"], reverse_order="true") == ["[4:0_5:0)", "[2:0_3:0)", "[0:0_1:0)"]


async def test_get_flows_id_segments_200_timerange_overlap_with_exclusive_bounds(tams: httpx.AsyncClient) -> None:
    """`timerange` returns segments that partially or wholly overlap it, honouring inclusive and exclusive
    bounds on both sides (checklist D.22, A.8)."""
    flow = await new_flow(tams)
    await add_segments(tams, flow["id"], ["[0:0_1:0)", "[1:0_2:0)", "[2:0]", "[3:0_4:0)"])
    expected = {
        "[1:0_2:0)": ["[1:0_2:0)"],
        "[0:500000000_1:0)": ["[0:0_1:0)"],
        "[0:500000000_1:0]": ["[0:0_1:0)", "[1:0_2:0)"],
        "(1:0_2:0)": ["[1:0_2:0)"],
        "[2:0]": ["[2:0]"],
        "[2:0_2:0]": ["[2:0]"],
        "(2:0_3:0)": [],
        "(2:0_3:0]": ["[3:0_4:0)"],
        "[1:999999999_2:0]": ["[1:0_2:0)", "[2:0]"],
        "[4:0_5:0)": [],
        "_1:0)": ["[0:0_1:0)"],
        "_1:0]": ["[0:0_1:0)", "[1:0_2:0)"],
        "[3:500000000_": ["[3:0_4:0)"],
        "(4:0_": [],
        "()": [],
        "[2:0)": [],
        "_": ["[0:0_1:0)", "[1:0_2:0)", "[2:0]", "[3:0_4:0)"],
    }
    for query, wanted in expected.items():
        assert await timeranges(tams, flow["id"], timerange=query) == wanted, query


async def test_get_flows_id_segments_200_object_id_filter(tams: httpx.AsyncClient) -> None:
    flow = await new_flow(tams)
    objects = await add_segments(tams, flow["id"], ["[0:0_1:0)", "[1:0_2:0)"])
    (segment,) = await segments(tams, flow["id"], object_id=objects[1])
    assert segment["timerange"] == "[1:0_2:0)"
    assert await segments(tams, flow["id"], object_id="no-such-object") == []


async def test_get_flows_id_segments_200_include_object_timerange(tams: httpx.AsyncClient) -> None:
    """On first registration the object's timerange defaults to `timerange - ts_offset`; it is only listed
    when `include_object_timerange=true`."""
    flow = await new_flow(tams)
    (object_id,) = await allocate(tams, flow["id"])
    await post(tams, flow["id"], {"object_id": object_id, "timerange": "[10:0_12:0)", "ts_offset": "10:0"})
    (plain,) = await segments(tams, flow["id"])
    assert "object_timerange" not in plain
    (with_object,) = await segments(tams, flow["id"], include_object_timerange="true")
    assert with_object["object_timerange"] == "[0:0_2:0)"


async def test_get_flows_id_segments_200_get_urls_download_the_uploaded_bytes(tams: httpx.AsyncClient) -> None:
    """Client workflow (§3.2): allocate, PUT the bytes to `put_url` with its content-type, register; the
    segment's `get_urls` (required for `http_object_store`) then serve those bytes."""
    flow = await new_flow(tams)
    (media_object,) = (await tams.post(f"/flows/{flow['id']}/storage", json={"limit": 1})).json()["media_objects"]
    put_url = media_object["put_url"]
    payload = b"\x47" + bytes(range(187))
    uploaded = await tams.put(put_url["url"], content=payload, headers={"content-type": put_url["content-type"]})
    assert uploaded.status_code in (200, 201, 204), uploaded.text
    await post(tams, flow["id"], {"object_id": media_object["object_id"], "timerange": "[0:0_1:0)"})
    (segment,) = await segments(tams, flow["id"])
    assert segment["get_urls"] and segment["get_urls"][0]["presigned"] is True
    assert (await tams.get(segment["get_urls"][0]["url"])).content == payload


async def test_get_flows_id_segments_200_get_urls_filters_and_verbose_storage(tams: httpx.AsyncClient) -> None:
    """`accept_get_urls` (omitted: all; empty: none; list: by label), `accept_storage_ids`, `presigned` and
    `storage_backend_tag*`, all ANDed (checklist D.23)."""
    flow = await new_flow(tams)
    (object_id,) = await allocate(tams, flow["id"])
    await post(tams, flow["id"], {"object_id": object_id, "timerange": "[0:0_1:0)",
                                  "get_urls": [{"url": "https://mirror.example/x", "label": "mirror"}]})
    backend = (await tams.get("/service/storage-backends")).json()[0]

    async def labels(**params: str) -> list[str]:
        (segment,) = await segments(tams, flow["id"], **params)
        return [u["label"] for u in segment.get("get_urls", [])]

    assert await labels() == [backend["label"], "mirror"]
    assert await labels(accept_get_urls="") == []
    assert await labels(accept_get_urls="mirror") == ["mirror"]
    assert await labels(accept_get_urls=f"{backend['label']},elsewhere") == [backend["label"]]
    assert await labels(presigned="true") == [backend["label"]]
    assert await labels(presigned="false") == ["mirror"]
    assert await labels(accept_storage_ids=backend["id"]) == [backend["label"]]
    assert await labels(accept_storage_ids="") == [backend["label"], "mirror"]
    assert await labels(accept_storage_ids=backend["id"], presigned="false") == []
    assert await labels(**{"storage_backend_tag_exists.auth_classes": "true"}) == []
    assert await labels(**{"storage_backend_tag.auth_classes": "news"}) == []
    (verbose,) = await segments(tams, flow["id"], verbose_storage="true", accept_get_urls=backend["label"])
    controlled = verbose["get_urls"][0]
    assert controlled["storage_id"] == backend["id"] and controlled.get("controlled", True) is True
    for key in ("store_type", "provider", "store_product"):
        assert controlled[key] == backend[key], key


async def test_get_flows_id_segments_200_non_verbose_get_urls_have_only_url_presigned_label(
        tams: httpx.AsyncClient) -> None:
    """`verbose_storage` false (the default): "only `url`, `presigned`, and `label` will be included in
    `get_urls` and `init_object.get_urls`" - for controlled and uncontrolled URLs alike."""
    flow = await new_flow(tams)
    (object_id,) = await allocate(tams, flow["id"])
    await post(tams, flow["id"], {"object_id": object_id, "timerange": "[0:0_1:0)",
                                  "get_urls": [{"url": "https://mirror.example/x", "label": "mirror"}]})
    (segment,) = await segments(tams, flow["id"])
    assert [set(u) - {"url", "presigned", "label"} for u in segment["get_urls"]] == [set(), set()]


async def test_get_flows_id_segments_200_init_object_with_its_get_urls(tams: httpx.AsyncClient) -> None:
    """Segments sharing an init object name it as `init_object.object_id`, with its own `get_urls`."""
    flow = await new_flow(tams, essence_parameters=INIT_ESSENCE)
    init, first, second = await allocate(tams, flow["id"], 3)
    assert (await post(tams, flow["id"], [
        {"object_id": first, "timerange": "[0:0_2:0)", "init_object_id": init},
        {"object_id": second, "timerange": "[2:0_4:0)", "init_object_id": init}])).status_code == 201
    got = await segments(tams, flow["id"])
    assert [s["init_object"]["object_id"] for s in got] == [init, init]
    assert got[0]["init_object"]["get_urls"][0]["url"]
    (no_urls,) = await segments(tams, flow["id"], accept_get_urls="", timerange="[0:0]")
    assert no_urls["init_object"] == {"object_id": init}


async def test_get_flows_id_segments_200_paging_with_timerange_header(tams: httpx.AsyncClient) -> None:
    """Pages of `limit` segments, `Link` to the next page, `X-Paging-Timerange` covering each page, in both
    orders; the hook checks the other paging headers on every page."""
    flow = await new_flow(tams)
    await add_segments(tams, flow["id"], [f"[{i}:0_{i + 1}:0)" for i in range(5)])
    for reverse, expected_ranges in (("false", ["[0:0_2:0)", "[2:0_4:0)", "[4:0_5:0)"]),
                                     ("true", ["[3:0_5:0)", "[1:0_3:0)", "[0:0_1:0)"])):
        url: str | None = f"/flows/{flow['id']}/segments?limit=2&reverse_order={reverse}"
        seen, ranges = [], []
        while url:
            response = await tams.get(url)
            seen += [s["timerange"] for s in response.json()]
            ranges.append(response.headers["X-Paging-Timerange"])
            url = response.links.get("next", {}).get("url")
        assert ranges == expected_ranges, reverse
        forward = [f"[{i}:0_{i + 1}:0)" for i in range(5)]
        assert seen == (forward if reverse == "false" else forward[::-1])
    filtered = await tams.get(f"/flows/{flow['id']}/segments", params={"timerange": "[1:0_3:0)", "limit": "1"})
    assert "timerange=" in filtered.links["next"]["url"]


async def test_get_flows_id_segments_200_empty_list_for_unknown_flow(tams: httpx.AsyncClient) -> None:
    """Reading chosen (README, and the spec's description): a valid but unknown flow id answers `200 []`."""
    response = await tams.get(f"/flows/{UNKNOWN_ID}/segments")
    assert response.status_code == 200 and response.json() == []


async def test_get_flows_id_segments_400_invalid_query(tams: httpx.AsyncClient) -> None:
    flow, _ = await flow_with_segments(tams, ["[0:0_1:0)"])
    for params in ({"timerange": "bogus"}, {"reverse_order": "maybe"}, {"page": "not-a-key"},
                   {"include_object_timerange": "maybe"}, {"verbose_storage": "maybe"},
                   {"storage_backend_tag_exists.x": "maybe"}):
        assert (await tams.get(f"/flows/{flow['id']}/segments", params=params)).status_code == 400, params


async def test_get_flows_id_segments_400_for_non_boolean_presigned(tams: httpx.AsyncClient) -> None:
    """`presigned` is declared boolean, like `reverse_order` and `verbose_storage`, which already give 400."""
    flow, _ = await flow_with_segments(tams, ["[0:0_1:0)"])
    assert (await tams.get(f"/flows/{flow['id']}/segments", params={"presigned": "maybe"})).status_code == 400


async def test_get_flows_id_segments_404_malformed_flow_id(tams: httpx.AsyncClient) -> None:
    """Reading chosen (README): an invalid id answers 404 ("The Flow ID in the path is invalid")."""
    assert (await tams.get(f"/flows/{MALFORMED_ID}/segments")).status_code == 404


async def test_head_flows_id_segments_200_paging_headers_without_body(tams: httpx.AsyncClient) -> None:
    flow, _ = await flow_with_segments(tams, ["[0:0_1:0)", "[1:0_2:0)"])
    head = await same_as_get(tams, f"/flows/{flow['id']}/segments", limit="1")
    assert head.status_code == 200 and head.headers["X-Paging-Timerange"] == "[0:0_1:0)"
    assert "next" in head.links


async def test_head_flows_id_segments_400_invalid_query(tams: httpx.AsyncClient) -> None:
    flow = await new_flow(tams)
    assert (await same_as_get(tams, f"/flows/{flow['id']}/segments", timerange="bogus")).status_code == 400


async def test_head_flows_id_segments_404_malformed_flow_id(tams: httpx.AsyncClient) -> None:
    assert (await same_as_get(tams, f"/flows/{MALFORMED_ID}/segments")).status_code == 404


# -- DELETE ----------------------------------------------------------------------------------


async def test_delete_flows_id_segments_204_removes_only_completely_covered_segments(
        tams: httpx.AsyncClient) -> None:
    """Unlike GET's overlap, DELETE takes only segments the timerange completely covers (checklist D.27).
    Reading chosen (README): the flow timerange is the half-open hull, and time is whole nanoseconds, so a
    hull ending with the instant `[6:0]` is written `[0:0_6:1)`."""
    flow, _ = await flow_with_segments(tams, ["[0:0_2:0)", "[2:0_4:0)", "[4:0_6:0)", "[6:0]"])
    response = await tams.delete(f"/flows/{flow['id']}/segments", params={"timerange": "[1:0_6:0)"})
    assert response.status_code == 204 and response.content == b""
    assert await timeranges(tams, flow["id"]) == ["[0:0_2:0)", "[6:0]"]
    await tams.delete(f"/flows/{flow['id']}/segments", params={"timerange": "(6:0_7:0)"})
    assert await timeranges(tams, flow["id"]) == ["[0:0_2:0)", "[6:0]"]
    got = (await tams.get(f"/flows/{flow['id']}", params={"include_timerange": "true"})).json()
    assert got["timerange"] == "[0:0_6:1)"


async def test_delete_flows_id_segments_204_object_id_restricts_deletion(tams: httpx.AsyncClient) -> None:
    flow, objects = await flow_with_segments(tams, ["[0:0_1:0)", "[1:0_2:0)", "[2:0_3:0)"])
    params = {"object_id": objects[1]}
    assert (await tams.delete(f"/flows/{flow['id']}/segments", params=params)).status_code == 204
    assert await timeranges(tams, flow["id"]) == ["[0:0_1:0)", "[2:0_3:0)"]
    params = {"object_id": objects[0], "timerange": "[2:0_3:0)"}  # both must match: nothing goes
    assert (await tams.delete(f"/flows/{flow['id']}/segments", params=params)).status_code == 204
    assert await timeranges(tams, flow["id"]) == ["[0:0_1:0)", "[2:0_3:0)"]


async def test_delete_flows_id_segments_204_default_timerange_deletes_all(tams: httpx.AsyncClient) -> None:
    flow, _ = await flow_with_segments(tams, ["[0:0_1:0)", "[5:0_6:0)"])
    assert (await tams.delete(f"/flows/{flow['id']}/segments")).status_code == 204
    assert await timeranges(tams, flow["id"]) == []
    got = (await tams.get(f"/flows/{flow['id']}", params={"include_timerange": "true"})).json()
    assert got["timerange"] == "()"


async def test_delete_flows_id_segments_400_invalid_timerange(tams: httpx.AsyncClient) -> None:
    flow, _ = await flow_with_segments(tams, ["[0:0_1:0)"])
    assert (await tams.delete(f"/flows/{flow['id']}/segments", params={"timerange": "bogus"})).status_code == 400
    assert await timeranges(tams, flow["id"]) == ["[0:0_1:0)"]


async def test_delete_flows_id_segments_403_read_only(tams: httpx.AsyncClient) -> None:
    flow, _ = await flow_with_segments(tams, ["[0:0_1:0)"])
    await tams.put(f"/flows/{flow['id']}/read_only", json=True)
    assert (await tams.delete(f"/flows/{flow['id']}/segments")).status_code == 403
    assert await timeranges(tams, flow["id"]) == ["[0:0_1:0)"]


async def test_delete_flows_id_segments_404_unknown_flow(tams: httpx.AsyncClient) -> None:
    assert (await tams.delete(f"/flows/{UNKNOWN_ID}/segments")).status_code == 404
    assert (await tams.delete(f"/flows/{MALFORMED_ID}/segments")).status_code == 404


async def test_put_flows_id_201_video_flow_from_helper_accepts_segments(tams: httpx.AsyncClient) -> None:
    """Sanity of the builders the segment tests use: a video flow with a container takes segments."""
    flow = await put_flow(tams, video_flow())
    await add_segments(tams, flow["id"], ["[0:0_1:0)"])
    assert await timeranges(tams, flow["id"]) == ["[0:0_1:0)"]
