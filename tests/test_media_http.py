"""The media router over real HTTP (uvicorn on a free port) and a real LocalMediaStore."""

from __future__ import annotations

import asyncio
import os
import socket
import threading
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import urlsplit, urlunsplit

import httpx
import pytest
import pytest_asyncio
import uvicorn
from fastapi import FastAPI

from api.media import media_router
from stores.localdir import CHUNK_SIZE, LocalMediaStore
from stores.signing import UrlSigner

UPLOAD_LIMIT = 64 * 1024
ODD_KEYS = [
    "flows/3f2a/segments/0001.ts",
    "with space/and  two",
    "ünïcødé/片段/🎞.mp4",
    "..",
    ".",
    "../../etc/passwd",
    "a/../b",
    "/leading//double/",
    "?q=1#frag&sig=x%2F%",
    "new\nline",
    "plus+sign",
]


@dataclass
class Served:
    base_url: str
    store: LocalMediaStore
    signer: UrlSigner

    def url(self, method: str, key: str, expires_in: float = 3600) -> str:
        return self.signer.sign_url(self.base_url, method, key, int(time.time() + expires_in))


@pytest_asyncio.fixture(scope="module")
async def served(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Served]:
    store = LocalMediaStore(tmp_path_factory.mktemp("media"))
    signer = UrlSigner(os.urandom(32))
    app = FastAPI()
    app.include_router(media_router(store, signer, max_upload_bytes=UPLOAD_LIMIT))
    # Bound and listening before the server starts, so requests queue instead of failing.
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    sock.listen(128)
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    host, port = sock.getsockname()
    try:
        yield Served(f"http://{host}:{port}", store, signer)
    finally:
        server.should_exit = True
        await asyncio.to_thread(thread.join, 30)
        sock.close()
        await store.close()


@pytest_asyncio.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=30) as client:
        yield client


def assert_error(response: httpx.Response, status: int, type_: str) -> None:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    if response.request.method == "HEAD":
        return  # the same headers as GET, but no body
    body = response.json()
    assert set(body) == {"type", "summary", "time"}
    assert body["type"] == type_
    assert isinstance(body["summary"], str) and len(body["summary"]) > 10
    assert body["time"].endswith("Z")
    moment = datetime.fromisoformat(body["time"])
    assert moment.tzinfo is not None and abs((datetime.now(UTC) - moment).total_seconds()) < 60


def with_query(url: str, query: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(query=query))


async def stored(served: Served, key: str) -> bytes:
    size = (await served.store.info(key)).size
    return b"".join([c async for c in served.store.read_range(key, 0, size)])


@pytest.mark.parametrize("key", ODD_KEYS)
async def test_put_then_get_through_signed_urls_round_trips_any_key(
    served: Served, http: httpx.AsyncClient, key: str
) -> None:
    data = os.urandom(5000)
    put = await http.put(served.url("PUT", key), content=data, headers={"content-type": "video/mp2t"})
    assert put.status_code == 200, put.text
    assert await stored(served, key) == data  # stored under exactly the signed key

    got = await http.get(served.url("GET", key))
    assert got.status_code == 200, got.text
    assert got.content == data
    assert got.headers["content-type"] == "application/octet-stream"
    assert got.headers["content-length"] == str(len(data))
    assert got.headers["accept-ranges"] == "bytes"


async def test_head_reports_size_without_a_body(served: Served, http: httpx.AsyncClient) -> None:
    await served.store.put("head/me", b"x" * 1234)
    for method in ("GET", "HEAD"):  # a GET URL is good for HEAD too
        response = await http.head(served.url(method, "head/me"), headers={"range": "bytes=0-9"})
        assert response.status_code == 200  # Range is defined for GET only
        assert response.headers["content-length"] == "1234"
        assert response.headers["accept-ranges"] == "bytes"
        assert response.content == b""


async def test_head_with_put_url_is_forbidden(served: Served, http: httpx.AsyncClient) -> None:
    await served.store.put("head/put", b"x")
    assert_error(await http.head(served.url("PUT", "head/put")), 403, "InvalidSignature")


DATA = bytes(range(256)) * 4  # 1024 bytes


@pytest.mark.parametrize(
    ("range_header", "start", "end"),
    [
        ("bytes=0-0", 0, 1),
        ("bytes=10-19", 10, 20),
        ("bytes=1000-5000", 1000, 1024),  # last-pos past the end is clamped
        ("bytes=1000-", 1000, 1024),  # open range
        ("bytes=0-", 0, 1024),
        ("bytes=-24", 1000, 1024),  # suffix range
        ("bytes=-5000", 0, 1024),  # suffix longer than the object
        ("BYTES=5-6", 5, 7),
    ],
)
async def test_range_request_returns_206_with_the_slice(
    served: Served, http: httpx.AsyncClient, range_header: str, start: int, end: int
) -> None:
    await served.store.put("ranged", DATA)
    response = await http.get(served.url("GET", "ranged"), headers={"range": range_header})
    assert response.status_code == 206, response.text
    assert response.content == DATA[start:end]
    assert response.headers["content-range"] == f"bytes {start}-{end - 1}/{len(DATA)}"
    assert response.headers["content-length"] == str(end - start)
    assert response.headers["accept-ranges"] == "bytes"


@pytest.mark.parametrize("range_header", ["bytes=1024-", "bytes=2000-3000", "bytes=-0"])
async def test_unsatisfiable_range_gets_416_with_the_size(
    served: Served, http: httpx.AsyncClient, range_header: str
) -> None:
    await served.store.put("ranged", DATA)
    response = await http.get(served.url("GET", "ranged"), headers={"range": range_header})
    assert_error(response, 416, "RangeNotSatisfiable")
    assert response.headers["content-range"] == f"bytes */{len(DATA)}"


async def test_any_range_of_an_empty_object_is_unsatisfiable(served: Served, http: httpx.AsyncClient) -> None:
    assert (await http.put(served.url("PUT", "empty"), content=b"")).status_code == 200
    whole = await http.get(served.url("GET", "empty"))
    assert whole.status_code == 200 and whole.content == b"" and whole.headers["content-length"] == "0"
    ranged = await http.get(served.url("GET", "empty"), headers={"range": "bytes=-5"})
    assert_error(ranged, 416, "RangeNotSatisfiable")
    assert ranged.headers["content-range"] == "bytes */0"


@pytest.mark.parametrize("range_header", ["bytes=0-1,5-6", "bytes=9-3", "bytes=-", "items=0-1", "bytes=abc"])
async def test_unsupported_or_invalid_range_is_ignored_and_the_whole_object_sent(
    served: Served, http: httpx.AsyncClient, range_header: str
) -> None:
    await served.store.put("ranged", DATA)
    response = await http.get(served.url("GET", "ranged"), headers={"range": range_header})
    assert response.status_code == 200
    assert response.content == DATA
    assert "content-range" not in response.headers


async def test_range_with_if_range_sends_the_whole_object(served: Served, http: httpx.AsyncClient) -> None:
    await served.store.put("ranged", DATA)
    headers = {"range": "bytes=0-9", "if-range": '"some-etag"'}
    response = await http.get(served.url("GET", "ranged"), headers=headers)
    assert response.status_code == 200 and response.content == DATA


async def test_large_object_streams_whole_and_in_ranges_across_chunks(served: Served, http: httpx.AsyncClient) -> None:
    data = os.urandom(3 * CHUNK_SIZE + 999)
    await served.store.put("large", data)
    url = served.url("GET", "large")
    async with http.stream("GET", url) as response:
        assert response.status_code == 200
        assert response.headers["content-length"] == str(len(data))
        assert b"".join([c async for c in response.aiter_bytes()]) == data
    start, end = CHUNK_SIZE - 10, 2 * CHUNK_SIZE + 10
    ranged = await http.get(url, headers={"range": f"bytes={start}-{end - 1}"})
    assert ranged.status_code == 206 and ranged.content == data[start:end]


async def test_get_of_missing_object_with_valid_signature_is_404(served: Served, http: httpx.AsyncClient) -> None:
    assert_error(await http.get(served.url("GET", "no/such/object")), 404, "MediaNotFound")
    assert_error(await http.head(served.url("GET", "no/such/object")), 404, "MediaNotFound")


async def test_unsigned_request_is_403_even_for_a_missing_object(served: Served, http: httpx.AsyncClient) -> None:
    url = with_query(served.url("GET", "no/such/object"), "")
    assert_error(await http.get(url), 403, "InvalidSignature")


async def test_tampered_signature_is_403(served: Served, http: httpx.AsyncClient) -> None:
    await served.store.put("guarded", b"secret bytes")
    url = served.url("GET", "guarded")
    sig = url.rsplit("sig=", 1)[1]
    tampered = url[: -len(sig)] + ("A" if sig[0] != "A" else "B") + sig[1:]
    response = await http.get(tampered)
    assert_error(response, 403, "InvalidSignature")
    assert b"secret bytes" not in response.content


async def test_missing_sig_or_expires_is_403(served: Served, http: httpx.AsyncClient) -> None:
    await served.store.put("guarded", b"secret bytes")
    url = served.url("GET", "guarded")
    query = urlsplit(url).query
    expires, sig = (part for part in query.split("&"))
    assert_error(await http.get(with_query(url, expires)), 403, "InvalidSignature")
    assert_error(await http.get(with_query(url, sig)), 403, "InvalidSignature")


async def test_changed_expiry_is_403(served: Served, http: httpx.AsyncClient) -> None:
    await served.store.put("guarded", b"secret bytes")
    url = served.url("GET", "guarded", expires_in=60)
    expires = url.split("expires=")[1].split("&")[0]
    assert_error(await http.get(url.replace(f"expires={expires}", f"expires={int(expires) + 86400}")), 403,
                 "InvalidSignature")


async def test_get_url_used_for_put_is_403_and_stores_nothing(served: Served, http: httpx.AsyncClient) -> None:
    response = await http.put(served.url("GET", "put/with/get/url"), content=b"sneaky")
    assert_error(response, 403, "InvalidSignature")
    assert not await served.store.exists("put/with/get/url")


async def test_expired_url_is_403_expired_signature(served: Served, http: httpx.AsyncClient) -> None:
    await served.store.put("guarded", b"secret bytes")
    response = await http.get(served.url("GET", "guarded", expires_in=-1))
    assert_error(response, 403, "ExpiredSignature")
    put = await http.put(served.url("PUT", "late", expires_in=-1), content=b"too late")
    assert_error(put, 403, "ExpiredSignature")
    assert not await served.store.exists("late")


async def test_signature_for_one_key_does_not_open_another(served: Served, http: httpx.AsyncClient) -> None:
    await served.store.put("mine", b"mine")
    await served.store.put("theirs", b"theirs")
    url = served.url("GET", "mine")
    response = await http.get(url.replace("/media/mine?", "/media/theirs?"))
    assert_error(response, 403, "InvalidSignature")
    assert b"theirs" not in response.content


async def test_upload_at_the_limit_is_accepted(served: Served, http: httpx.AsyncClient) -> None:
    data = os.urandom(UPLOAD_LIMIT)
    assert (await http.put(served.url("PUT", "at/limit"), content=data)).status_code == 200
    assert await stored(served, "at/limit") == data


async def test_oversize_upload_is_413_and_stores_nothing(served: Served, http: httpx.AsyncClient) -> None:
    response = await http.put(served.url("PUT", "too/big"), content=b"x" * (UPLOAD_LIMIT + 1))
    assert_error(response, 413, "UploadTooLarge")
    assert not await served.store.exists("too/big")


async def test_oversize_chunked_upload_without_length_is_413(served: Served, http: httpx.AsyncClient) -> None:
    async def body() -> AsyncIterator[bytes]:
        for _ in range(3):
            yield b"y" * (UPLOAD_LIMIT // 2)

    response = await http.put(served.url("PUT", "too/big/chunked"), content=body())
    assert_error(response, 413, "UploadTooLarge")
    assert not await served.store.exists("too/big/chunked")


async def test_chunked_upload_within_limit_is_stored(served: Served, http: httpx.AsyncClient) -> None:
    async def body() -> AsyncIterator[bytes]:
        for i in range(4):
            yield bytes([i]) * 1000

    assert (await http.put(served.url("PUT", "chunked"), content=body())).status_code == 200
    assert await stored(served, "chunked") == b"".join(bytes([i]) * 1000 for i in range(4))


async def test_put_replaces_the_object(served: Served, http: httpx.AsyncClient) -> None:
    for content in (b"first and longer", b"second"):
        assert (await http.put(served.url("PUT", "replaced"), content=content)).status_code == 200
    assert (await http.get(served.url("GET", "replaced"))).content == b"second"


async def test_concurrent_puts_of_one_key_leave_one_complete_object(served: Served, http: httpx.AsyncClient) -> None:
    payloads = [bytes([i]) * (UPLOAD_LIMIT - i) for i in range(16)]
    url = served.url("PUT", "contested")
    responses = await asyncio.gather(*(http.put(url, content=p) for p in payloads))
    assert [r.status_code for r in responses] == [200] * len(payloads)
    got = await http.get(served.url("GET", "contested"))
    assert got.content in payloads
    assert got.headers["content-length"] == str(len(got.content))
