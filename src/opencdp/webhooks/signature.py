"""HMAC-SHA256 signatures of Customer.io reporting webhooks.

Customer.io signs ``"v0:" + <X-CIO-Timestamp, verbatim> + ":" + <raw body>`` with the webhook
signing key and sends the lowercase hex digest in ``X-CIO-Signature``. The timestamp is used
exactly as received: re-formatting it (or re-serialising the JSON body) changes the signed bytes.

Customer.io does not say how old a signed request may be; we reject anything more than
``tolerance`` seconds away from our clock in either direction, which bounds how long a captured
request can be replayed.

Hand-written on purpose: it is ten lines of ``hmac``, and the one library that does it for Python
(``async_customerio``) would pull in a whole API client.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from enum import Enum

from ..errors import ConfigurationError

__all__ = ["SignatureFailure", "check_signature", "sign_payload", "verify_signature"]

_MAX_TIMESTAMP_DIGITS = 12


class SignatureFailure(str, Enum):
    """Why a request's signature was refused; the value is what the endpoint reports."""

    MISSING_TIMESTAMP = "missing_timestamp"
    MISSING_SIGNATURE = "missing_signature"
    BAD_TIMESTAMP = "bad_timestamp"
    STALE_TIMESTAMP = "stale_timestamp"
    FUTURE_TIMESTAMP = "future_timestamp"
    MISMATCH = "signature_mismatch"


def _key_bytes(signing_key: str | bytes) -> bytes:
    if isinstance(signing_key, str):
        signing_key = signing_key.encode("utf-8")
    if not isinstance(signing_key, bytes) or not signing_key:
        raise ConfigurationError("the webhook signing key must be a non-empty string")
    return signing_key


def _timestamp_text(timestamp: int | str) -> str:
    if isinstance(timestamp, bool) or not isinstance(timestamp, (int, str)):
        raise TypeError("timestamp must be an int or the X-CIO-Timestamp header text")
    return str(timestamp)


def _body_bytes(body: bytes | bytearray | memoryview | str) -> bytes:
    if isinstance(body, str):
        return body.encode("utf-8")
    if isinstance(body, (bytes, bytearray, memoryview)):
        return bytes(body)
    raise TypeError("body must be the raw request body as bytes")


def _digest(key: bytes, timestamp: str, body: bytes) -> str:
    mac = hmac.new(key, b"v0:" + timestamp.encode("utf-8") + b":", hashlib.sha256)
    mac.update(body)
    return mac.hexdigest()


def sign_payload(signing_key: str, timestamp: int | str, body: bytes) -> str:
    """The ``X-CIO-Signature`` value Customer.io would send for ``body`` at ``timestamp``.

    Used by the sandbox to send signed webhooks, and by tests that need a valid request.
    """
    return _digest(_key_bytes(signing_key), _timestamp_text(timestamp), _body_bytes(body))


def check_signature(
    signing_key: str | bytes,
    timestamp: int | str | None,
    body: bytes | bytearray | memoryview | str,
    signature: str | None,
    *,
    tolerance: float | None = 300,
    now: float | None = None,
) -> SignatureFailure | None:
    """Like :func:`verify_signature`, but say why a request was refused (None if it was not).

    The reason is for logs and responses; it never includes the key or the expected digest.
    """
    key = _key_bytes(signing_key)
    if timestamp is None or timestamp == "":
        return SignatureFailure.MISSING_TIMESTAMP
    if signature is None or not signature.strip():
        return SignatureFailure.MISSING_SIGNATURE
    ts_text = _timestamp_text(timestamp)
    if not (ts_text.isascii() and ts_text.isdigit() and len(ts_text) <= _MAX_TIMESTAMP_DIGITS):
        return SignatureFailure.BAD_TIMESTAMP
    if tolerance is not None:
        skew = (time.time() if now is None else now) - int(ts_text)
        if skew > tolerance:
            return SignatureFailure.STALE_TIMESTAMP
        if -skew > tolerance:
            return SignatureFailure.FUTURE_TIMESTAMP
    given = signature.strip()
    if given[:3].lower() == "v0=":
        given = given[3:]
    expected = _digest(key, ts_text, _body_bytes(body))
    # compare_digest needs ASCII on both sides; a non-ASCII header simply does not match.
    if not given.isascii() or not hmac.compare_digest(given.lower(), expected):
        return SignatureFailure.MISMATCH
    return None


def verify_signature(
    signing_key: str | bytes,
    timestamp: int | str | None,
    body: bytes | bytearray | memoryview | str,
    signature: str | None,
    *,
    tolerance: float | None = 300,
    now: float | None = None,
) -> bool:
    """True when ``signature`` is Customer.io's signature of ``body`` at a fresh ``timestamp``.

    ``timestamp`` and ``signature`` are the ``X-CIO-Timestamp`` and ``X-CIO-Signature`` header
    values as received (None when missing); ``body`` is the raw request body. The digest is
    compared in constant time; an optional ``v0=`` prefix on the signature is accepted.
    Timestamps more than ``tolerance`` seconds before or after ``now`` (default: the current
    time) are refused; ``tolerance=None`` turns the window off, for replaying stored requests.
    An empty signing key raises :class:`~opencdp.errors.ConfigurationError`.
    """
    failure = check_signature(
        signing_key, timestamp, body, signature, tolerance=tolerance, now=now
    )
    return failure is None
