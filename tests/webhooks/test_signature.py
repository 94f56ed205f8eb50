"""Signature checks: the exact signed string, the time window, constant-time comparison inputs."""

from __future__ import annotations

import hashlib
import hmac

import pytest
from hypothesis import given
from hypothesis import strategies as st

from opencdp.errors import ConfigurationError
from opencdp.webhooks import SignatureFailure, check_signature, sign_payload, verify_signature

KEY = "whsec_test_key"
BODY = b'{"event_id":"01E4C4CT6YDC7Y5M7FE1GWWPQJ","metric":"sent"}'
TS = 1613063089
# printf 'v0:1613063089:<BODY>' | openssl dgst -sha256 -hmac whsec_test_key
OPENSSL_DIGEST = "98a555fd9777cd0ef7d59352ddca11e337ca969195cf06ae437d91ea9ea65e4b"


def test_signature_matches_an_independent_hmac() -> None:
    """The signed bytes are exactly "v0:" + timestamp + ":" + body (checked with openssl)."""
    assert sign_payload(KEY, TS, BODY) == OPENSSL_DIGEST
    assert sign_payload(KEY, str(TS), BODY) == OPENSSL_DIGEST


def test_valid_signature_verifies() -> None:
    assert verify_signature(KEY, str(TS), BODY, OPENSSL_DIGEST, now=TS)
    assert verify_signature(KEY, TS, BODY, OPENSSL_DIGEST, now=TS)


@pytest.mark.parametrize(
    "header",
    [
        OPENSSL_DIGEST.upper(),
        f"v0={OPENSSL_DIGEST}",
        f"V0={OPENSSL_DIGEST}",
        f" {OPENSSL_DIGEST}\n",
    ],
)
def test_tolerated_header_forms(header: str) -> None:
    """Case, surrounding whitespace and a ``v0=`` prefix do not matter."""
    assert verify_signature(KEY, str(TS), BODY, header, now=TS)


def test_timestamp_is_used_verbatim() -> None:
    """A re-formatted timestamp is a different signed string."""
    padded = sign_payload(KEY, "0" + str(TS), BODY)
    assert padded != OPENSSL_DIGEST
    assert verify_signature(KEY, "0" + str(TS), BODY, padded, now=TS)
    assert not verify_signature(KEY, str(TS), BODY, padded, now=TS)


def test_body_is_used_verbatim() -> None:
    """Re-serialised JSON (other spacing) does not verify."""
    reserialised = b'{"event_id": "01E4C4CT6YDC7Y5M7FE1GWWPQJ", "metric": "sent"}'
    assert check_signature(KEY, str(TS), reserialised, OPENSSL_DIGEST, now=TS) == (
        SignatureFailure.MISMATCH
    )


def test_str_body_is_its_utf8_bytes() -> None:
    text = '{"name":"Zoë"}'
    assert sign_payload(KEY, TS, text.encode()) == hmac.new(
        KEY.encode(), f"v0:{TS}:{text}".encode(), hashlib.sha256
    ).hexdigest()
    assert verify_signature(KEY, TS, text, sign_payload(KEY, TS, text.encode()), now=TS)


@pytest.mark.parametrize(
    ("now", "expected"),
    [
        (TS + 300, None),
        (TS - 300, None),
        (TS + 301, SignatureFailure.STALE_TIMESTAMP),
        (TS - 301, SignatureFailure.FUTURE_TIMESTAMP),
        (TS + 86400 * 7, SignatureFailure.STALE_TIMESTAMP),
    ],
)
def test_tolerance_window(now: float, expected: SignatureFailure | None) -> None:
    assert check_signature(KEY, str(TS), BODY, OPENSSL_DIGEST, now=now) == expected
    assert verify_signature(KEY, str(TS), BODY, OPENSSL_DIGEST, now=now) is (expected is None)


def test_custom_tolerance_and_no_window() -> None:
    assert not verify_signature(KEY, str(TS), BODY, OPENSSL_DIGEST, tolerance=10, now=TS + 11)
    assert verify_signature(KEY, str(TS), BODY, OPENSSL_DIGEST, tolerance=None, now=TS + 10**8)


def test_default_clock_is_now() -> None:
    """Without ``now``, a years-old timestamp is stale."""
    assert check_signature(KEY, str(TS), BODY, OPENSSL_DIGEST) == SignatureFailure.STALE_TIMESTAMP


@pytest.mark.parametrize(
    ("timestamp", "signature", "expected"),
    [
        (None, OPENSSL_DIGEST, SignatureFailure.MISSING_TIMESTAMP),
        ("", OPENSSL_DIGEST, SignatureFailure.MISSING_TIMESTAMP),
        (str(TS), None, SignatureFailure.MISSING_SIGNATURE),
        (str(TS), "  ", SignatureFailure.MISSING_SIGNATURE),
        ("16130630.89", OPENSSL_DIGEST, SignatureFailure.BAD_TIMESTAMP),
        ("-1613063089", OPENSSL_DIGEST, SignatureFailure.BAD_TIMESTAMP),
        ("1e9", OPENSSL_DIGEST, SignatureFailure.BAD_TIMESTAMP),
        ("١٦١٣٠٦٣٠٨٩", OPENSSL_DIGEST, SignatureFailure.BAD_TIMESTAMP),
        ("9" * 40, OPENSSL_DIGEST, SignatureFailure.BAD_TIMESTAMP),
        (str(TS), OPENSSL_DIGEST[:-1], SignatureFailure.MISMATCH),
        (str(TS), OPENSSL_DIGEST[:-1] + "é", SignatureFailure.MISMATCH),
        (str(TS), sign_payload("other key", TS, BODY), SignatureFailure.MISMATCH),
        (str(TS), "sha256=" + OPENSSL_DIGEST, SignatureFailure.MISMATCH),
    ],
)
def test_refusals_name_their_reason(
    timestamp: str | None, signature: str | None, expected: SignatureFailure
) -> None:
    assert check_signature(KEY, timestamp, BODY, signature, now=TS) == expected
    assert verify_signature(KEY, timestamp, BODY, signature, now=TS) is False


@pytest.mark.parametrize("key", ["", b""])
def test_empty_key_is_a_configuration_error(key: str | bytes) -> None:
    with pytest.raises(ConfigurationError) as info:
        verify_signature(key, str(TS), BODY, OPENSSL_DIGEST, now=TS)
    with pytest.raises(ConfigurationError):
        sign_payload(key, TS, BODY)  # type: ignore[arg-type]
    assert "signing key" in str(info.value)


def test_wrong_argument_types_are_type_errors() -> None:
    with pytest.raises(TypeError):
        sign_payload(KEY, True, BODY)
    with pytest.raises(TypeError):
        sign_payload(KEY, TS, {"a": 1})  # type: ignore[arg-type]


@given(key=st.text(min_size=1), body=st.binary(max_size=512), ts=st.integers(0, 10**11))
def test_round_trip(key: str, body: bytes, ts: int) -> None:
    assert verify_signature(key, str(ts), body, sign_payload(key, ts, body), now=ts)


@given(
    body=st.binary(min_size=1, max_size=256),
    index=st.integers(0, 255),
    flip=st.integers(1, 255),
)
def test_any_changed_byte_breaks_the_signature(body: bytes, index: int, flip: int) -> None:
    index %= len(body)
    tampered = bytearray(body)
    tampered[index] ^= flip
    signature = sign_payload(KEY, TS, body)
    assert not verify_signature(KEY, str(TS), bytes(tampered), signature, now=TS)
