"""HTTP endpoints behind signed media URLs (see `stores.signing`).

``GET``/``HEAD /media/{key}`` serve an object, ``GET`` with a single HTTP byte range if asked;
``PUT /media/{key}`` stores the request body (200 on success, as S3 answers). Every request must
carry ``expires`` and ``sig`` query parameters signed for its method (a HEAD request may use a URL
signed for GET). Refusals have a JSON body ``{"type", "summary", "time"}``:

* 403 ``InvalidSignature`` / ``ExpiredSignature``: missing, altered or expired signature;
* 404 ``MediaNotFound``: nothing stored under the key;
* 413 ``UploadTooLarge``: a PUT body over ``max_upload_bytes``;
* 416 ``RangeNotSatisfiable``: the range starts at or past the end of the object.

The signature is checked before the store is touched, so unsigned requests learn nothing about
which keys exist. Objects are always served as ``application/octet-stream``.
"""

from __future__ import annotations

import re
import time
from collections.abc import AsyncIterator

from fastapi import APIRouter
from starlette.convertors import Convertor, register_url_convertor
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response, StreamingResponse

from schemas.events import rfc3339_now
from stores.errors import MediaNotFound
from stores.media import MediaStore
from stores.signing import InvalidSignature, SignatureError, UrlSigner

__all__ = ["RangeNotSatisfiable", "UploadTooLarge", "media_router"]

OCTET_STREAM = "application/octet-stream"


class UploadTooLarge(Exception):
    """A PUT body is larger than the router accepts."""


class RangeNotSatisfiable(Exception):
    """The requested byte range lies outside the object."""


class _AnyPathConvertor(Convertor[str]):
    """Like Starlette's ``path`` convertor, but also matches newlines (keys may contain them)."""

    regex = r"[\s\S]*"

    def convert(self, value: str) -> str:
        return value

    def to_string(self, value: str) -> str:
        return value


register_url_convertor("media_key", _AnyPathConvertor())


def _error(status: int, exc: Exception, headers: dict[str, str] | None = None) -> JSONResponse:
    body = {"type": type(exc).__name__, "summary": str(exc), "time": rfc3339_now()}
    return JSONResponse(body, status_code=status, headers=headers)


_RANGE_RE = re.compile(r"bytes=(\d*)-(\d*)", re.IGNORECASE)


def parse_range(header: str, size: int) -> tuple[int, int] | None:
    """Resolve a ``Range`` header against an object of `size` bytes.

    Returns the half-open byte range [start, end) to send, or None to ignore the header and
    send the whole object (what RFC 9110 allows for syntax this server does not support,
    including multiple ranges). Raises `RangeNotSatisfiable` when no requested byte exists.
    """
    m = _RANGE_RE.fullmatch(header.strip())
    if m is None:
        return None
    first, last = m.group(1), m.group(2)
    try:
        if first:
            start = int(first)
            if last and int(last) < start:
                return None  # an invalid range-spec: ignored
            if start >= size:
                raise RangeNotSatisfiable(
                    f"the range {header.strip()!r} starts at or after the end of the object ({size} bytes)"
                )
            end = min(int(last) + 1, size) if last else size
            return start, end
        if last:
            suffix = int(last)
            if suffix == 0 or size == 0:
                raise RangeNotSatisfiable(
                    f"the range {header.strip()!r} selects no bytes of the object ({size} bytes)"
                )
            return max(0, size - suffix), size
    except ValueError:  # too many digits for int()
        return None
    return None


def media_router(store: MediaStore, signer: UrlSigner, *, max_upload_bytes: int) -> APIRouter:
    """Routes serving the URLs `signer` issues, over `store`."""
    if max_upload_bytes < 0:
        raise ValueError("max_upload_bytes must not be negative")
    router = APIRouter()

    def check_signature(request: Request, key: str, methods: tuple[str, ...]) -> None:
        query = request.query_params
        expires, sig = query.get("expires"), query.get("sig")
        if expires is None and sig is None:
            raise InvalidSignature("the URL is not signed: the expires and sig query parameters are missing")
        now = time.time()
        for i, method in enumerate(methods):
            try:
                signer.verify(method, key, expires or "", sig or "", now)
                return
            except InvalidSignature:
                if i == len(methods) - 1:
                    raise

    @router.api_route("/media/{key:media_key}", methods=["GET", "HEAD"], include_in_schema=False)
    async def get_media(request: Request) -> Response:
        key: str = request.path_params["key"]
        head = request.method == "HEAD"
        try:
            check_signature(request, key, ("GET", "HEAD") if head else ("GET",))
        except SignatureError as exc:
            return _error(403, exc)
        try:
            size = (await store.info(key)).size
        except MediaNotFound as exc:
            return _error(404, exc)

        headers = {"accept-ranges": "bytes"}
        start, end, status = 0, size, 200
        range_header = request.headers.get("range")
        # Range applies to GET only; with If-Range it needs a validator we do not have, so the
        # whole object is sent (RFC 9110 section 13.1.5).
        if range_header is not None and not head and "if-range" not in request.headers:
            try:
                selected = parse_range(range_header, size)
            except RangeNotSatisfiable as exc:
                return _error(416, exc, {"content-range": f"bytes */{size}", "accept-ranges": "bytes"})
            if selected is not None:
                start, end = selected
                status = 206
                headers["content-range"] = f"bytes {start}-{end - 1}/{size}"
        headers["content-length"] = str(end - start)
        if head or start == end:
            return Response(status_code=status, headers=headers, media_type=OCTET_STREAM)

        chunks = store.read_range(key, start, end)
        try:
            # Open the object before committing to a status: it may have gone since info().
            first = await anext(chunks)
        except MediaNotFound as exc:
            return _error(404, exc)
        except StopAsyncIteration:
            first = b""
        return StreamingResponse(
            _prepend(first, chunks), status_code=status, headers=headers, media_type=OCTET_STREAM
        )

    @router.put("/media/{key:media_key}", include_in_schema=False)
    async def put_media(request: Request) -> Response:
        key: str = request.path_params["key"]
        try:
            check_signature(request, key, ("PUT",))
        except SignatureError as exc:
            return _error(403, exc)
        too_large = UploadTooLarge(f"the body is larger than the {max_upload_bytes} bytes an upload may have")
        declared = request.headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > max_upload_bytes:
            return _error(413, too_large)
        parts: list[bytes] = []
        received = 0
        try:
            async for part in request.stream():
                received += len(part)
                if received > max_upload_bytes:
                    return _error(413, too_large)
                parts.append(part)
        except ClientDisconnect:
            return Response(status_code=400)  # nobody is listening; nothing was stored
        await store.put(key, b"".join(parts))
        return Response(status_code=200)

    return router


async def _prepend(first: bytes, rest: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
    try:
        if first:
            yield first
        async for chunk in rest:
            yield chunk
    finally:
        aclose = getattr(rest, "aclose", None)
        if aclose is not None:
            await aclose()
