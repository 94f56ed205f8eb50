"""The two exceptions of ``cdp-python-sdk``, with the same attributes.

Both sit under ``opencdp.OpenCDPError`` as well, so one ``except`` catches either family.
``CDPValidationError`` is also a ``ValueError``, as pydantic's error for a malformed model was.
"""

from __future__ import annotations

from ..errors import OpenCDPError

__all__ = ["CDPError", "CDPValidationError"]


class CDPError(OpenCDPError):
    """A call failed; ``status_code`` is the gateway's HTTP status, or ``None`` when there was
    no answer (unreachable, timed out, or refused before sending)."""

    def __init__(self, message: str, status_code: int | None = None) -> None:
        super().__init__(message)
        self.status_code = status_code


class CDPValidationError(CDPError, ValueError):
    """Bad input, caught before anything was sent; ``field`` names it (``identifier``,
    ``eventName``, ``properties``, ``attachments``, ...)."""

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field
