"""`/`, `/service` and `/service/storage-backends` (digest §1.2; checklist A.1, A.2, A.4, E.29)."""

from __future__ import annotations

import httpx

from tests.conformance.helpers import example, same_as_get


def seconds(timestamp: str) -> float:
    """A TAMS timestamp `s:ns` as seconds (the nanoseconds part is a count, not a fraction)."""
    sign = -1 if timestamp.startswith("-") else 1
    secs, nanos = timestamp.lstrip("-").split(":")
    return sign * (int(secs) + int(nanos) / 1e9)


# -- / ---------------------------------------------------------------------------------------


async def test_get_root_200_lists_top_level_paths_that_answer(tams: httpx.AsyncClient) -> None:
    response = await tams.get("/")
    assert response.status_code == 200
    names = response.json()
    assert {"service", "flows", "sources", "flow-delete-requests"} <= set(names)
    for name in names:
        assert (await tams.get(f"/{name}")).status_code == 200, name


async def test_head_root_200_same_headers_as_get_without_body(tams: httpx.AsyncClient) -> None:
    assert (await same_as_get(tams, "/")).status_code == 200


# -- /service --------------------------------------------------------------------------------


async def test_get_service_200_reports_type_api_version_and_timeouts(tams: httpx.AsyncClient) -> None:
    """`api_version` 8.2; `min_object_timeout` >= 300:0; presigned URLs are issued, so
    `min_presigned_url_timeout` is set, >= 30:0 and <= `min_object_timeout`."""
    response = await tams.get("/service")
    assert response.status_code == 200
    service = response.json()
    assert service["type"].startswith("urn:x-tams:service")
    assert service["api_version"] == "8.2"
    assert seconds(service["min_object_timeout"]) >= 300
    assert 30 <= seconds(service["min_presigned_url_timeout"]) <= seconds(service["min_object_timeout"])


async def test_get_service_200_does_not_advertise_webhooks(tams: httpx.AsyncClient) -> None:
    """Reading chosen (README): webhooks are not offered yet, so `event_stream_mechanisms` does not
    list them and every webhook path answers 404 (see test_webhooks.py)."""
    service = (await tams.get("/service")).json()
    assert "webhooks" not in [m["name"] for m in service.get("event_stream_mechanisms", [])]


async def test_head_service_200_same_headers_as_get_without_body(tams: httpx.AsyncClient) -> None:
    assert (await same_as_get(tams, "/service")).status_code == 200


async def test_post_service_200_official_example_changes_name_and_description(tams: httpx.AsyncClient) -> None:
    """The official `service-post.json` is accepted; the change is kept (the name is restored afterwards)."""
    before = (await tams.get("/service")).json()
    post = example("service-post.json")
    try:
        response = await tams.post("/service", json=post)
        assert response.status_code == 200, response.text
        service = (await tams.get("/service")).json()
        assert service["name"] == post["name"] and service["description"] == post["description"]
        assert service["api_version"] == "8.2"  # nothing else changes
    finally:
        await tams.post("/service", json={"name": before["name"]})


async def test_post_service_400_for_invalid_body(tams: httpx.AsyncClient) -> None:
    for body in ({"name": 5}, {"description": ["x"]}, ["name"]):
        response = await tams.post("/service", json=body)
        assert response.status_code == 400, body
    response = await tams.post("/service", content=b"{not json", headers={"content-type": "application/json"})
    assert response.status_code == 400


# -- /service/storage-backends ---------------------------------------------------------------


async def test_get_service_storage_backends_200_lists_one_default_http_object_store(tams: httpx.AsyncClient) -> None:
    response = await tams.get("/service/storage-backends")
    assert response.status_code == 200
    backends = response.json()
    assert [b for b in backends if b.get("default_storage")], "no default backend"
    assert len([b for b in backends if b.get("default_storage")]) == 1
    assert all(b["store_type"] == "http_object_store" for b in backends)
    labels = [b.get("label") for b in backends]
    assert labels == sorted(labels, key=lambda label: (label is None, label))  # fixed sort: by label


async def test_get_service_storage_backends_200_filters_by_tag_and_tag_exists(tams: httpx.AsyncClient) -> None:
    """`tag.{name}` and `tag_exists.{name}` filter backends like any listing (the test stack's backend has
    no tags)."""
    everything = (await tams.get("/service/storage-backends")).json()
    assert all(not b.get("tags", {}).get("auth_classes") for b in everything)
    assert (await tams.get("/service/storage-backends", params={"tag_exists.auth_classes": "false"})).json() == \
        everything
    assert (await tams.get("/service/storage-backends", params={"tag_exists.auth_classes": "true"})).json() == []
    assert (await tams.get("/service/storage-backends", params={"tag.auth_classes": "news"})).json() == []


async def test_get_service_storage_backends_200_honours_limit_and_reverse_order(tams: httpx.AsyncClient) -> None:
    """`limit` is applied (`X-Paging-Limit` says which) and `X-Paging-Reverse-Order` reports `reverse_order`."""
    limited = await tams.get("/service/storage-backends", params={"limit": "1"})
    assert limited.headers["X-Paging-Limit"] == "1" and len(limited.json()) == 1
    reversed_ = await tams.get("/service/storage-backends", params={"reverse_order": "true"})
    assert reversed_.headers["X-Paging-Reverse-Order"] == "true"


async def test_head_service_storage_backends_200_same_headers_as_get_without_body(tams: httpx.AsyncClient) -> None:
    head = await same_as_get(tams, "/service/storage-backends")
    assert head.status_code == 200 and "X-Paging-Count" in head.headers
