"""Customer.io reporting webhooks: verify, parse and handle them."""

from __future__ import annotations

from .signature import SignatureFailure, check_signature, sign_payload, verify_signature

__all__ = ["SignatureFailure", "check_signature", "sign_payload", "verify_signature"]
