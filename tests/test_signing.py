"""Signed media URLs: what a signature binds (method, key, expiry) and how verification fails."""

from __future__ import annotations

import base64
import hashlib
import hmac
from urllib.parse import parse_qs, quote, unquote, urlsplit

import pytest
from hypothesis import given
from hypothesis import strategies as st

from stores.signing import ExpiredSignature, InvalidSignature, SignatureError, UrlSigner, quote_key

SECRET = b"test-signing-key-0123456789"
EXPIRES = 2_000_000_000
NOW = 1_900_000_000.0

ODD_KEYS = [
    "flows/3f2a/segments/0001.ts",
    "with space and  two",
    "ünïcødé/片段/🎞.mp4",
    "..",
    ".",
    "../../etc/passwd",
    "/leading/and/trailing/",
    "?query#fragment&sig=x%2F%",
    "new\nline\ttab\x00nul",
    "",
    "k" * 4000,
]


@pytest.fixture
def signer() -> UrlSigner:
    return UrlSigner(SECRET)


def parts(url: str) -> tuple[str, str, str]:
    """(raw key segment, expires, sig) of a signed URL."""
    split = urlsplit(url)
    assert split.path.startswith("/media/")
    query = parse_qs(split.query, keep_blank_values=True, strict_parsing=True)
    return split.path[len("/media/") :], query["expires"][0], query["sig"][0]


@pytest.mark.parametrize("key", ODD_KEYS)
def test_signed_url_verifies_for_its_method_key_and_expiry(signer: UrlSigner, key: str) -> None:
    segment, expires, sig = parts(signer.sign_url("http://media.example:8000", "GET", key, EXPIRES))
    assert "/" not in segment and "?" not in segment and "#" not in segment
    assert unquote(segment) == key
    assert expires == str(EXPIRES)
    signer.verify("GET", unquote(segment), expires, sig, NOW)


def test_url_layout_is_base_media_quoted_key_expires_sig(signer: UrlSigner) -> None:
    url = signer.sign_url("https://tams.example/api/", "PUT", "a b/c", EXPIRES)
    sig = signer.signature("PUT", "a b/c", EXPIRES)
    assert url == f"https://tams.example/api/media/a%20b%2Fc?expires={EXPIRES}&sig={sig}"


def test_signature_is_documented_hmac_sha256_so_other_processes_can_interoperate(signer: UrlSigner) -> None:
    key = "flows/ü/1.ts"
    message = b"tams-media-v1\nGET\n" + str(EXPIRES).encode() + b"\n" + key.encode()
    digest = hmac.new(SECRET, message, hashlib.sha256).digest()
    assert signer.signature("GET", key, EXPIRES) == base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def test_signing_key_longer_than_a_hash_block_still_matches_hmac() -> None:
    long_secret = bytes(range(256)) * 2
    message = b"tams-media-v1\nPUT\n5\nk"
    expected = base64.urlsafe_b64encode(hmac.new(long_secret, message, hashlib.sha256).digest()).rstrip(b"=")
    assert UrlSigner(long_secret).signature("PUT", "k", 5) == expected.decode()


@given(st.text())
def test_quote_key_matches_quote_with_nothing_safe_except_for_dot_segments(key: str) -> None:
    encoded = quote_key(key)
    assert unquote(encoded) == key
    if key in (".", ".."):
        assert encoded == "%2E" * len(key)
    else:
        assert encoded == quote(key, safe="")


@given(key=st.text(), expires=st.integers(min_value=0, max_value=10**13 - 1), method=st.sampled_from(["GET", "PUT"]))
def test_any_key_round_trips_through_sign_and_verify(key: str, expires: int, method: str) -> None:
    signer = UrlSigner(SECRET)
    segment, exp, sig = parts(signer.sign_url("http://h", method, key, expires))
    signer.verify(method, unquote(segment), exp, sig, expires - 1)


def test_get_url_cannot_be_used_for_put(signer: UrlSigner) -> None:
    _, expires, sig = parts(signer.sign_url("http://h", "GET", "k", EXPIRES))
    with pytest.raises(InvalidSignature):
        signer.verify("PUT", "k", expires, sig, NOW)


def test_put_url_cannot_be_used_for_get(signer: UrlSigner) -> None:
    _, expires, sig = parts(signer.sign_url("http://h", "PUT", "k", EXPIRES))
    with pytest.raises(InvalidSignature):
        signer.verify("GET", "k", expires, sig, NOW)


@pytest.mark.parametrize("other_key", ["k2", "K", "k ", "k/", "", "k\x00"])
def test_signature_for_one_key_does_not_open_another(signer: UrlSigner, other_key: str) -> None:
    _, expires, sig = parts(signer.sign_url("http://h", "GET", "k", EXPIRES))
    with pytest.raises(InvalidSignature):
        signer.verify("GET", other_key, expires, sig, NOW)


def test_extending_the_expiry_invalidates_the_signature(signer: UrlSigner) -> None:
    _, expires, sig = parts(signer.sign_url("http://h", "GET", "k", EXPIRES))
    with pytest.raises(InvalidSignature):
        signer.verify("GET", "k", str(int(expires) + 1), sig, NOW)


def test_tampered_signature_is_invalid(signer: UrlSigner) -> None:
    _, expires, sig = parts(signer.sign_url("http://h", "GET", "k", EXPIRES))
    flipped = ("A" if sig[5] != "A" else "B").join((sig[:5], sig[6:]))
    for bad in (flipped, sig[:-1], sig + "A", sig.lower(), ""):
        with pytest.raises(InvalidSignature):
            signer.verify("GET", "k", expires, bad, NOW)


def test_non_ascii_signature_is_invalid_not_a_type_error(signer: UrlSigner) -> None:
    with pytest.raises(InvalidSignature):
        signer.verify("GET", "k", str(EXPIRES), "é" * 43, NOW)


def test_signature_from_another_signing_key_is_invalid(signer: UrlSigner) -> None:
    _, expires, sig = parts(UrlSigner(b"another key").sign_url("http://h", "GET", "k", EXPIRES))
    with pytest.raises(InvalidSignature):
        signer.verify("GET", "k", expires, sig, NOW)


def test_url_is_valid_until_its_expiry_second_and_expired_from_it(signer: UrlSigner) -> None:
    _, expires, sig = parts(signer.sign_url("http://h", "GET", "k", EXPIRES))
    signer.verify("GET", "k", expires, sig, EXPIRES - 0.001)
    for now in (EXPIRES, EXPIRES + 3600.0):
        with pytest.raises(ExpiredSignature):
            signer.verify("GET", "k", expires, sig, now)


def test_tampered_and_expired_url_reports_invalid_not_expired(signer: UrlSigner) -> None:
    _, expires, sig = parts(signer.sign_url("http://h", "GET", "k", 100))
    with pytest.raises(InvalidSignature):
        signer.verify("GET", "k", "99", sig, NOW)


@pytest.mark.parametrize("expires", ["", "-1", "+2000000000", " 2000000000", "2e9", "2000000000.0", "٢٠٠٠", "9" * 14])
def test_malformed_expires_is_invalid(signer: UrlSigner, expires: str) -> None:
    sig = signer.signature("GET", "k", EXPIRES)
    with pytest.raises(InvalidSignature, match="expires"):
        signer.verify("GET", "k", expires, sig, NOW)


def test_expires_may_be_given_as_int(signer: UrlSigner) -> None:
    signer.verify("GET", "k", EXPIRES, signer.signature("GET", "k", EXPIRES), NOW)


def test_both_failures_are_signature_errors() -> None:
    assert issubclass(InvalidSignature, SignatureError)
    assert issubclass(ExpiredSignature, SignatureError)
    assert not issubclass(InvalidSignature, ExpiredSignature)


def test_method_is_case_insensitive_and_uncommon_methods_work(signer: UrlSigner) -> None:
    signer.verify("GET", "k", EXPIRES, signer.signature("get", "k", EXPIRES), NOW)
    signer.verify("PATCH", "k", EXPIRES, signer.signature("patch", "k", EXPIRES), NOW)


@pytest.mark.parametrize("method", ["", "G ET", "GET\n", "GÉT"])
def test_non_token_method_is_refused(signer: UrlSigner, method: str) -> None:
    with pytest.raises(ValueError):
        signer.sign_url("http://h", method, "k", EXPIRES)


def test_expiry_out_of_range_is_refused_when_signing(signer: UrlSigner) -> None:
    for bad in (-1, 10**13):
        with pytest.raises(ValueError):
            signer.sign_url("http://h", "GET", "k", bad)


def test_empty_signing_key_is_refused() -> None:
    with pytest.raises(ValueError):
        UrlSigner(b"")
