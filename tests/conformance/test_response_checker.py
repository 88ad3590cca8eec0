"""The automatic validation itself (conftest.ResponseChecker), on canned responses: a checker that let
everything through would make the rest of the suite prove nothing."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import pytest

from tests.conformance.conftest import SEEN, ResponseChecker, SpecViolation, template_for
from tests.conftest import video_flow

FLOW_ID = "11111111-1111-4111-8111-111111111111"
ERROR = {"type": "NotFound", "summary": "no such thing", "time": "2026-01-01T00:00:00Z"}
PAGING = {"X-Paging-Limit": "2", "X-Paging-Count": "1", "X-Paging-Reverse-Order": "false"}


@pytest.fixture(autouse=True)
def _keep_seen_for_real_responses() -> Any:
    """Canned responses must not count as operations exercised against the service."""
    before = set(SEEN)
    yield
    SEEN.clear()
    SEEN.update(before)


def flow_body() -> dict[str, Any]:
    return {**video_flow(FLOW_ID), "created": "2026-01-01T00:00:00Z"}


def client(handler: Callable[[httpx.Request], httpx.Response]) -> httpx.AsyncClient:
    """A `tams`-like client whose server is `handler` (also for the HEAD it sends after each GET)."""
    transport = httpx.MockTransport(handler)
    plain = httpx.AsyncClient(transport=transport, base_url="http://tams")
    return httpx.AsyncClient(transport=transport, base_url="http://tams",
                             event_hooks={"response": [ResponseChecker(plain)]})


def answer(status: int, body: Any = None, headers: dict[str, str] | None = None,
           head: httpx.Response | None = None) -> Callable[[httpx.Request], httpx.Response]:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.method == "HEAD" and head is not None:
            return head
        if body is None:
            return httpx.Response(status, headers=headers)
        response = httpx.Response(status, json=body, headers=headers)
        if request.method == "HEAD":
            return httpx.Response(status, headers={**response.headers, "content-length": "0"})
        return response
    return handler


async def violation(handler: Callable[[httpx.Request], httpx.Response], method: str, url: str) -> str:
    async with client(handler) as c:
        with pytest.raises(SpecViolation) as raised:
            await c.request(method, url)
    return str(raised.value)


async def passes(handler: Callable[[httpx.Request], httpx.Response], method: str, url: str) -> None:
    async with client(handler) as c:
        await c.request(method, url)


def test_paths_resolve_to_their_templates() -> None:
    assert template_for("/") == "/"
    assert template_for(f"/flows/{FLOW_ID}") == "/flows/{flowId}"
    assert template_for(f"/flows/{FLOW_ID}/tags/genre") == "/flows/{flowId}/tags/{name}"
    assert template_for("/objects/a/b/instances") == "/objects/{objectId}/instances"
    assert template_for("/objects/a%2Fb") == "/objects/{objectId}"
    assert template_for("/flow-delete-requests/x") == "/flow-delete-requests/{request-id}"
    assert template_for("/media/abc") is None and template_for("/health") is None


async def test_valid_responses_pass() -> None:
    await passes(answer(200, flow_body()), "GET", f"/flows/{FLOW_ID}")
    await passes(answer(404, ERROR), "GET", "/service")  # undocumented, but an allowed error with the error body
    await passes(answer(204), "DELETE", f"/flows/{FLOW_ID}")
    await passes(answer(200, [flow_body()], PAGING), "GET", "/flows?limit=2")


async def test_a_body_invalid_against_the_documented_schema_fails() -> None:
    body = {k: v for k, v in flow_body().items() if k != "source_id"}
    assert "documented schema" in await violation(answer(200, body), "GET", f"/flows/{FLOW_ID}")
    bad_date = {**flow_body(), "created": "yesterday"}
    assert "created" in await violation(answer(200, bad_date), "GET", f"/flows/{FLOW_ID}")


async def test_undocumented_statuses_and_bad_error_bodies_fail() -> None:
    assert "not documented" in await violation(answer(500, ERROR), "GET", "/service")
    assert "not documented" in await violation(answer(418, ERROR), "GET", "/service")
    assert "not documented" in await violation(answer(202, ERROR), "GET", "/service")
    assert "error body" in await violation(answer(404, {"detail": "Not Found"}), "GET", f"/flows/{FLOW_ID}")
    assert "error.json" in await violation(answer(400, {**ERROR, "time": 5}), "GET", "/flows")


async def test_head_must_have_no_body_and_match_get() -> None:
    def with_body(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json=["service"])
    assert "no body" in await violation(with_body, "HEAD", "/")
    other_status = httpx.Response(404)
    assert "HEAD answered 404" in await violation(answer(200, ["service"], head=other_status), "GET", "/")
    other_headers = httpx.Response(200, headers={**PAGING, "X-Paging-Count": "7"})
    assert "differ" in await violation(answer(200, [], {**PAGING, "X-Paging-Count": "0"}, head=other_headers),
                                       "GET", "/flows")


async def test_paging_headers_are_required_and_consistent() -> None:
    missing = {k: v for k, v in PAGING.items() if k != "X-Paging-Count"}
    assert "X-Paging-Count is missing" in await violation(answer(200, [], missing), "GET", "/flows")
    assert "items" in await violation(answer(200, [], PAGING), "GET", "/flows")  # Count 1, no items
    reverse = "X-Paging-Reverse-Order"
    assert reverse in await violation(answer(200, [flow_body()], PAGING), "GET", "/flows?reverse_order=true")
    lonely_link = {**PAGING, "Link": '<http://tams/flows?page=k>; rel="next"'}
    assert "together" in await violation(answer(200, [flow_body()], lonely_link), "GET", "/flows")
    drops_filter = {**PAGING, "Link": '<http://tams/flows?page=k>; rel="next"', "X-Paging-NextKey": "k"}
    assert "drops" in await violation(answer(200, [flow_body()], drops_filter), "GET", "/flows?label=x")
    segments = {**PAGING, "X-Paging-Timerange": "not a timerange"}
    assert "X-Paging-Timerange" in await violation(answer(200, [{"object_id": "o", "timerange": "[0:0_1:0)"}],
                                                          segments), "GET", f"/flows/{FLOW_ID}/segments")


async def test_a_202_needs_location_naming_its_deletion_request() -> None:
    request = {"id": "22222222-2222-4222-8222-222222222222", "flow_id": FLOW_ID, "timerange_to_delete": "_",
               "delete_flow": True, "status": "created"}
    assert "Location is missing" in await violation(answer(202, request), "DELETE", f"/flows/{FLOW_ID}")
    elsewhere = {"Location": "/flow-delete-requests/33333333-3333-4333-8333-333333333333"}
    assert "does not name" in await violation(answer(202, request, elsewhere), "DELETE", f"/flows/{FLOW_ID}")
    await passes(answer(202, request, {"Location": f"/flow-delete-requests/{request['id']}"}), "DELETE",
                 f"/flows/{FLOW_ID}")


async def test_a_204_with_a_body_fails() -> None:
    def body_204(request: httpx.Request) -> httpx.Response:
        return httpx.Response(204, content=b"{}")
    assert "204" in await violation(body_204, "PUT", f"/flows/{FLOW_ID}/label")
