"""Deletes that answer 202, and `/flow-delete-requests` (digest §1.8, §1.11, §4; checklist C.21, D.27, F.38, F.39).

The test stack deletes at most 10 segments per step (`TAMS_DELETE_CHUNK_SEGMENTS`, tests/stack.py),
so a delete of more answers 202 with `Location` and a deletion request, and goes on asynchronously;
the tests poll the request until it is `done` (the only waiting in this suite).
"""

from __future__ import annotations

import httpx

from tests.conformance.helpers import (
    UNKNOWN_ID,
    add_segments,
    new_flow,
    same_as_get,
    timeranges,
    wait_for_deletion,
)

CHUNK = 10  # TAMS_DELETE_CHUNK_SEGMENTS of the test stack


async def flow_with_many_segments(tams: httpx.AsyncClient, count: int = CHUNK + 2) -> dict:
    flow = await new_flow(tams)
    await add_segments(tams, flow["id"], [f"[{i}:0_{i + 1}:0)" for i in range(count)])
    return flow


async def test_delete_flows_id_segments_202_large_delete_goes_on_through_a_deletion_request(
        tams: httpx.AsyncClient) -> None:
    """202 with the deletion request (`delete_flow: false`) as body and `Location` naming it (both checked by
    the hook); the request reaches `done` with `timerange_remaining` empty, and only covered segments go."""
    flow = await flow_with_many_segments(tams)
    last = f"[{CHUNK + 1}:0_{CHUNK + 2}:0)"
    response = await tams.delete(f"/flows/{flow['id']}/segments", params={"timerange": f"[0:0_{CHUNK + 1}:0)"})
    assert response.status_code == 202, response.text
    request = response.json()
    assert request["flow_id"] == flow["id"] and request["delete_flow"] is False
    assert request["status"] in ("created", "started")
    assert request["timerange_to_delete"] == f"[0:0_{CHUNK + 1}:0)"
    assert response.headers["Location"].endswith(f"/flow-delete-requests/{request['id']}")
    done = await wait_for_deletion(tams, response.headers["Location"])
    assert done["timerange_remaining"] == "()"
    assert await timeranges(tams, flow["id"]) == [last]


async def test_delete_flows_id_202_large_flow_delete_removes_flow_and_source_when_done(
        tams: httpx.AsyncClient) -> None:
    flow = await flow_with_many_segments(tams)
    response = await tams.delete(f"/flows/{flow['id']}")
    assert response.status_code == 202, response.text
    assert response.json()["delete_flow"] is True and response.json()["flow_id"] == flow["id"]
    await wait_for_deletion(tams, response.headers["Location"])
    assert (await tams.get(f"/flows/{flow['id']}")).status_code == 404
    assert await timeranges(tams, flow["id"]) == []
    assert (await tams.get(f"/sources/{flow['source_id']}")).status_code == 404


async def accepted_deletion(tams: httpx.AsyncClient) -> dict:
    flow = await flow_with_many_segments(tams)
    response = await tams.delete(f"/flows/{flow['id']}/segments")
    assert response.status_code == 202, response.text
    return response.json()


async def test_get_flow_delete_requests_id_200_reports_the_request_until_done(tams: httpx.AsyncClient) -> None:
    request = await accepted_deletion(tams)
    response = await tams.get(f"/flow-delete-requests/{request['id']}")
    assert response.status_code == 200
    body = response.json()
    assert body["id"] == request["id"] and body["flow_id"] == request["flow_id"]
    assert body["status"] in ("created", "started", "done")
    done = await wait_for_deletion(tams, f"/flow-delete-requests/{request['id']}")
    assert done["timerange_to_delete"] == request["timerange_to_delete"]


async def test_get_flow_delete_requests_id_404_unknown_request(tams: httpx.AsyncClient) -> None:
    assert (await tams.get(f"/flow-delete-requests/{UNKNOWN_ID}")).status_code == 404


async def test_head_flow_delete_requests_id_200_same_headers_as_get_without_body(tams: httpx.AsyncClient) -> None:
    request = await accepted_deletion(tams)
    assert (await same_as_get(tams, f"/flow-delete-requests/{request['id']}")).status_code == 200
    await wait_for_deletion(tams, f"/flow-delete-requests/{request['id']}")


async def test_head_flow_delete_requests_id_404_unknown_request(tams: httpx.AsyncClient) -> None:
    assert (await same_as_get(tams, f"/flow-delete-requests/{UNKNOWN_ID}")).status_code == 404


async def test_get_flow_delete_requests_200_lists_requests_with_paging(tams: httpx.AsyncClient) -> None:
    """"If there are any requests in the system, it will always return at least one"; pages follow `Link`
    (the hook checks the paging headers of each page)."""
    request = await accepted_deletion(tams)
    other = await accepted_deletion(tams)
    first = await tams.get("/flow-delete-requests", params={"limit": "1"})
    assert first.status_code == 200 and len(first.json()) == 1 and "next" in first.links
    seen: list[str] = []
    url: str | None = "/flow-delete-requests?limit=1000"
    while url:
        response = await tams.get(url)
        seen += [r["id"] for r in response.json()]
        url = response.links.get("next", {}).get("url")
    assert request["id"] in seen
    for r in (request, other):
        await wait_for_deletion(tams, f"/flow-delete-requests/{r['id']}")


async def test_get_flow_delete_requests_200_accepts_sort_by_and_reverse_order(tams: httpx.AsyncClient) -> None:
    """`sort_by` (`created`, `expiry`) and `reverse_order` are documented; the spec leaves the order of this
    monitoring listing unspecified, so only acceptance (200) is required."""
    request = await accepted_deletion(tams)
    for params in ({"sort_by": "created"}, {"sort_by": "expiry", "reverse_order": "true"}):
        response = await tams.get("/flow-delete-requests", params=params)
        assert response.status_code == 200 and response.json(), params
    await wait_for_deletion(tams, f"/flow-delete-requests/{request['id']}")


async def test_head_flow_delete_requests_200_same_headers_as_get_without_body(tams: httpx.AsyncClient) -> None:
    assert (await same_as_get(tams, "/flow-delete-requests", limit="1")).status_code == 200
