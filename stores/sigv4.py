"""AWS Signature Version 4 query-string presigning for S3 object URLs, without botocore.

Why: botocore's ``generate_presigned_url`` runs the whole request pipeline (parameter validation,
event hooks, endpoint ruleset, serializer, signer) for every URL and costs well over 100 µs; a
segment listing hands out hundreds of URLs per response. Everything in a presigned URL except the
key, the method, the instant and the lifetime is fixed per bucket, so it is computed once here and
one URL costs one key quote, one SHA-256 and one HMAC-SHA256.

The output is byte-identical to ``boto3.client("s3", config=Config(signature_version="s3v4",
request_checksum_calculation="when_required", response_checksum_validation="when_required",
s3={"addressing_style": style})).generate_presigned_url(...)`` for botocore 1.40 (proven by
``tests/test_sigv4.py``), including botocore's choice of host:

* No ``endpoint_url`` (AWS): ``auto`` presigns against the *global* host
  ``https://{bucket}.s3.amazonaws.com`` in every region when the bucket is a lowercase DNS label
  (botocore does this for presigned URLs only), else path style: on ``s3.amazonaws.com`` in
  us-east-1 or when the bucket is still a host label (e.g. ``MyBucket``), on
  ``s3.{region}.amazonaws.com`` otherwise (dots, underscores); ``virtual`` uses ``{bucket}.s3.{region}.amazonaws.com``
  (``{bucket}.s3.amazonaws.com`` in us-east-1) and falls back to path style for buckets that are
  not lowercase DNS labels (e.g. with dots); ``path`` is always path style.
* Custom ``endpoint_url``: ``auto`` means path style. ``virtual`` puts the bucket in front of the
  endpoint's host unless the endpoint is an IP address; a bucket with dots is only virtual-hosted
  over ``http``, where botocore does it even in front of an IP address.

The signature covers only ``host`` (plus ``content-type`` when asked, see :meth:`S3Presigner.presign`)
and uses ``UNSIGNED-PAYLOAD``. Out of scope (rejected): ARNs, S3 Express / Outposts bucket aliases,
non-``aws`` partitions without an explicit ``endpoint_url``, accelerate, FIPS and dual-stack.
"""

from __future__ import annotations

import hashlib
import hmac
import math
import re
import time
from datetime import UTC, datetime
from typing import Literal
from urllib.parse import quote, urlsplit

AddressingStyle = Literal["auto", "path", "virtual"]

ALGORITHM = "AWS4-HMAC-SHA256"
SERVICE = "s3"
UNSIGNED_PAYLOAD = "UNSIGNED-PAYLOAD"
MAX_EXPIRES_S = 7 * 24 * 3600  # S3 rejects presigned URLs that live longer than a week

# botocore deletes exactly this Content-Type before query signing (it is its own default for form
# bodies), so a caller asking for it gets an URL that does not sign a content type at all.
FORM_CONTENT_TYPE = "application/x-www-form-urlencoded; charset=utf-8"

_BUCKET_RE = re.compile(r"[a-zA-Z0-9._-]{1,255}")
_HOST_LABEL_RE = re.compile(r"(?!-)[a-zA-Z0-9-]{1,63}(?<!-)")
_IPV4_RE = re.compile(r"(?:[0-9]{1,3}\.){3}[0-9]{1,3}")
_AWS_REGION_RE = re.compile(r"(?:us|eu|ap|sa|ca|me|af|il|mx)-\w+-\d+")
_UNSUPPORTED_SUFFIXES = ("--x-s3", "--xa-s3", "--op-s3")

# S3 keys are quoted once (no double encoding): RFC 3986 unreserved characters and "/" stay as they
# are, every other UTF-8 byte becomes %XX with upper-case hex.
_KEY_SAFE = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.~/")
_KEY_BYTE = [chr(b) if b in _KEY_SAFE else f"%{b:02X}" for b in range(256)]
_KEY_NEEDS_QUOTING = re.compile(r"[^A-Za-z0-9\-_.~/]").search


def quote_key(key: str) -> str:
    """Percent-encode an object key for the URL path the way botocore does (``/`` and ``~`` kept)."""
    if key.isascii() and _KEY_NEEDS_QUOTING(key) is None:
        return key  # the common case: nothing to encode
    return "".join([_KEY_BYTE[b] for b in key.encode("utf-8")])


def _encode_param(value: str) -> str:
    """Query values: everything but RFC 3986 unreserved characters is percent-encoded."""
    return quote(value.encode("utf-8"), safe="-_.~")


def _virtual_hostable(bucket: str, allow_dots: bool) -> bool:
    """Whether the endpoint rules may put the bucket in the host name (lowercase DNS labels)."""
    if len(bucket) < 3 or bucket.lower() != bucket or _IPV4_RE.fullmatch(bucket):
        return False
    labels = bucket.split(".") if allow_dots else [bucket]
    return all(_HOST_LABEL_RE.fullmatch(label) for label in labels)


def _is_ip_host(hostname: str) -> bool:
    return ":" in hostname or _IPV4_RE.fullmatch(hostname) is not None


def resolve_bucket_url(endpoint_url: str | None, region: str, bucket: str, addressing_style: str) -> str:
    """URL of the bucket (no trailing key) that botocore would presign against.

    Mirrors the S3 endpoint ruleset plus botocore's presign-only tweak (the global endpoint for
    ``auto`` on AWS) for the supported subset: plain buckets, aws partition or a custom endpoint.
    """
    if addressing_style not in ("auto", "path", "virtual"):
        raise ValueError(f"addressing_style must be auto, path or virtual, not {addressing_style!r}")
    if not _BUCKET_RE.fullmatch(bucket) or bucket.endswith(_UNSUPPORTED_SUFFIXES):
        raise ValueError(f"unsupported bucket name {bucket!r}")
    if endpoint_url is not None:
        # A custom endpoint: "auto" means path style, "virtual" is honoured where the rules allow.
        parts = urlsplit(endpoint_url)
        if parts.scheme not in ("http", "https") or not parts.hostname or parts.query or parts.fragment:
            raise ValueError(f"endpoint_url must be an http(s) URL without query: {endpoint_url!r}")
        if addressing_style == "virtual":
            if _virtual_hostable(bucket, False) and not _is_ip_host(parts.hostname):
                return f"{parts.scheme}://{bucket}.{parts.netloc}{parts.path}"
            if parts.scheme == "http" and _virtual_hostable(bucket, True) and "." in bucket:
                return f"{parts.scheme}://{bucket}.{parts.netloc}{parts.path}"
        return f"{parts.scheme}://{parts.netloc}{_normalized_path(parts.path)}{_encode_param(bucket)}"
    if not _AWS_REGION_RE.fullmatch(region):
        raise ValueError(f"region {region!r} is not in the aws partition; pass endpoint_url")
    force_path = addressing_style == "path"
    # For presigned URLs botocore switches "auto" to the global endpoint (s3.amazonaws.com) when
    # the bucket is a host label; us-east-1 is global anyway (legacy us_east_1_regional_endpoint).
    global_host = region == "us-east-1" or (
        addressing_style == "auto" and _HOST_LABEL_RE.fullmatch(bucket) is not None
    )
    s3_host = "s3.amazonaws.com" if global_host else f"s3.{region}.amazonaws.com"
    if not force_path and _virtual_hostable(bucket, False):
        return f"https://{bucket}.{s3_host}"
    return f"https://{s3_host}/{_encode_param(bucket)}"


def _normalized_path(path: str) -> str:
    """Endpoint path for path-style URLs: dot and empty segments resolved, quoted, ending in "/"."""
    segments: list[str] = []
    for segment in path.split("/"):
        if segment == "..":
            if segments:
                segments.pop()
        elif segment and segment != ".":
            segments.append(segment)
    return quote("/" + "".join(f"{segment}/" for segment in segments), safe="/")


def _host_header(url: str) -> str:
    """The ``host`` value SigV4 signs: lowercase host, port only when not the scheme's default."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    if parts.port is not None and parts.port != {"http": 80, "https": 443}.get(parts.scheme):
        host = f"{host}:{parts.port}"
    return host


def _hmac(key: bytes, message: str) -> bytes:
    return hmac.digest(key, message.encode("utf-8"), "sha256")


class S3Presigner:
    """Presigns S3 object URLs for one bucket with one set of credentials.

    Safe to share between coroutines and threads: the only mutable state is a cache of the current
    second's timestamp strings and one of the day's signing key, each a tuple replaced whole.
    """

    def __init__(
        self,
        *,
        endpoint_url: str | None,
        region: str,
        bucket: str,
        access_key: str,
        secret_key: str,
        session_token: str | None = None,
        addressing_style: AddressingStyle = "auto",
    ) -> None:
        if not region or not access_key or not secret_key:
            raise ValueError("region, access_key and secret_key are required")
        self.region = region
        self.bucket = bucket
        self.bucket_url = resolve_bucket_url(endpoint_url, region, bucket, addressing_style)
        parts = urlsplit(self.bucket_url)
        # botocore joins the bucket URL and "/{key}" dropping one "/" when the URL ends with one.
        self._path_prefix = parts.path.removesuffix("/")
        self._url_prefix = f"{parts.scheme}://{parts.netloc}{self._path_prefix}/"
        self._canonical_path_prefix = f"{self._path_prefix}/"
        host = _host_header(self.bucket_url)
        self._headers_host = f"host:{host}\n"
        self._secret = f"AWS4{secret_key}".encode()
        self._credential_prefix = f"{_encode_param(access_key)}%2F"
        self._scope_suffix = f"/{region}/{SERVICE}/aws4_request"
        self._credential_suffix = _encode_param(self._scope_suffix)
        self._token_param = (
            "" if session_token is None else f"&X-Amz-Security-Token={_encode_param(session_token)}"
        )
        # Each cache is one tuple, replaced whole, so concurrent threads never see half an update.
        self._stamp: tuple[int, str, str, str] = (-1, "", "", "")
        self._day_key: tuple[str, bytes] = ("", b"")

    def signing_key(self, datestamp: str) -> bytes:
        """The day's SigV4 key; derived (four HMACs) only when the UTC date changes."""
        day, key = self._day_key
        if day != datestamp:
            key = self._derive_signing_key(datestamp)
            self._day_key = (datestamp, key)
        return key

    def _derive_signing_key(self, datestamp: str) -> bytes:
        key = _hmac(self._secret, datestamp)
        key = _hmac(key, self.region)
        key = _hmac(key, SERVICE)
        return _hmac(key, "aws4_request")

    def _stamp_for(self, second: int) -> tuple[int, str, str, str]:
        """(second, query prefix up to X-Amz-Expires=, string-to-sign prefix, datestamp), cached."""
        t = time.gmtime(second)
        datestamp = f"{t.tm_year:04d}{t.tm_mon:02d}{t.tm_mday:02d}"
        amz_date = f"{datestamp}T{t.tm_hour:02d}{t.tm_min:02d}{t.tm_sec:02d}Z"
        query = (
            f"X-Amz-Algorithm={ALGORITHM}&X-Amz-Credential={self._credential_prefix}{datestamp}"
            f"{self._credential_suffix}&X-Amz-Date={amz_date}&X-Amz-Expires="
        )
        to_sign = f"{ALGORITHM}\n{amz_date}\n{datestamp}{self._scope_suffix}\n"
        self._stamp = stamp = (second, query, to_sign, datestamp)
        return stamp

    def presign(
        self,
        method: str,
        key: str,
        expires_in: int,
        *,
        content_type: str | None = None,
        now: datetime | float | None = None,
    ) -> str:
        """Presigned URL for ``method`` on object ``key``, valid ``expires_in`` seconds from ``now``.

        ``now`` is a UNIX time or a datetime (naive means UTC, as in botocore); default: the clock.
        Sub-second parts are dropped, as the SigV4 timestamp has whole seconds.

        ``content_type`` (for PUT) matches botocore's ``Params={..., "ContentType": ct}`` for
        ``put_object``: botocore does not drop it and does not put it in the query string; it
        signs it as a header (``X-Amz-SignedHeaders=content-type;host``, value trimmed and inner
        runs of whitespace collapsed), so the uploader must send exactly that Content-Type or S3
        answers SignatureDoesNotMatch. The one exception is botocore's own form default
        ``application/x-www-form-urlencoded; charset=utf-8``, which it silently removes.

        Checksums: presigned requests never get a default checksum in botocore (not even with
        ``request_checksum_calculation="when_supported"``), so with the project's config no
        ``x-amz-checksum-*`` / ``x-amz-sdk-checksum-algorithm`` header or parameter is signed.
        Only an explicit ``ChecksumAlgorithm`` parameter would add one; that is not supported here.
        """
        if now is None:
            second = int(time.time())
        elif isinstance(now, datetime):
            aware = now if now.tzinfo is not None else now.replace(tzinfo=UTC)
            second = math.floor(aware.timestamp())
        else:
            second = math.floor(now)
        if type(expires_in) is not int or not 0 < expires_in <= MAX_EXPIRES_S:
            raise ValueError(f"expires_in must be an int in 1..{MAX_EXPIRES_S}, not {expires_in!r}")
        stamp = self._stamp
        if stamp[0] != second:
            stamp = self._stamp_for(second)
        _, query_head, to_sign_head, datestamp = stamp
        day, signing_key = self._day_key
        if day != datestamp:
            signing_key = self.signing_key(datestamp)
        quoted = quote_key(key)
        if content_type is None or content_type == FORM_CONTENT_TYPE:
            headers, signed, signed_param = self._headers_host, "host", "host"
        else:
            headers = f"content-type:{' '.join(content_type.split())}\n{self._headers_host}"
            signed, signed_param = "content-type;host", "content-type%3Bhost"
        head = f"{query_head}{expires_in}"
        token = self._token_param
        # Canonical query parameters are sorted: X-Amz-Security-Token < X-Amz-SignedHeaders.
        canonical = (
            f"{method.upper()}\n{self._canonical_path_prefix}{quoted}\n"
            f"{head}{token}&X-Amz-SignedHeaders={signed_param}\n{headers}\n{signed}\n{UNSIGNED_PAYLOAD}"
        )
        digest = hashlib.sha256(canonical.encode("utf-8")).hexdigest()
        signature = hmac.digest(signing_key, f"{to_sign_head}{digest}".encode(), "sha256").hex()
        # botocore's URL keeps insertion order: SignedHeaders before Security-Token.
        return (
            f"{self._url_prefix}{quoted}?{head}&X-Amz-SignedHeaders={signed_param}{token}"
            f"&X-Amz-Signature={signature}"
        )
