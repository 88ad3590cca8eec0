"""`/service/webhooks` and `/service/webhooks/{webhookId}` (digest §1.3, §5; checklist H.42).

Reading chosen (README): webhooks are an optional feature this release does not offer. The spec
says a service without them answers 404 on every webhook path and does not list `webhooks` in
`/service` `event_stream_mechanisms` (checked in test_service.py). Each operation's 404 is
documented, so these tests pin exactly that, with the official request examples as bodies.
"""

from __future__ import annotations

import httpx

from tests.conformance.helpers import example, uid


async def test_get_service_webhooks_404_webhooks_not_offered(tams: httpx.AsyncClient) -> None:
    response = await tams.get("/service/webhooks")
    assert response.status_code == 404
    assert response.json()["type"]


async def test_head_service_webhooks_404_webhooks_not_offered(tams: httpx.AsyncClient) -> None:
    response = await tams.head("/service/webhooks", params={"limit": "5"})
    assert response.status_code == 404 and response.content == b""


async def test_post_service_webhooks_404_for_official_example(tams: httpx.AsyncClient) -> None:
    response = await tams.post("/service/webhooks", json=example("webhook-post.json"))
    assert response.status_code == 404


async def test_get_service_webhooks_id_404_webhooks_not_offered(tams: httpx.AsyncClient) -> None:
    assert (await tams.get(f"/service/webhooks/{uid()}")).status_code == 404


async def test_head_service_webhooks_id_404_webhooks_not_offered(tams: httpx.AsyncClient) -> None:
    response = await tams.head(f"/service/webhooks/{uid()}")
    assert response.status_code == 404 and response.content == b""


async def test_put_service_webhooks_id_404_for_official_example(tams: httpx.AsyncClient) -> None:
    body = example("webhook-put.json")
    response = await tams.put(f"/service/webhooks/{body['id']}", json=body)
    assert response.status_code == 404


async def test_delete_service_webhooks_id_404_webhooks_not_offered(tams: httpx.AsyncClient) -> None:
    assert (await tams.delete(f"/service/webhooks/{uid()}")).status_code == 404
