"""OCDP200: a file that does not parse."""

from __future__ import annotations

from typing import ClassVar

from ..model import Severity
from ..rule import Hit, Rule

__all__ = ["ParseFailure"]


class ParseFailure(Rule):
    """A Python file that does not parse (or is nested too deeply to analyse), so nothing in
    it was audited.

    Any of the other problems could hide in a file the audit cannot read, and the score would
    claim otherwise. The engine reports this code itself, at the position of the syntax error.
    """

    code = "OCDP200"
    name = "parse-failure"
    severity = Severity.ERROR
    message = "file does not parse, so it was not audited; fix the syntax error"
    VALID: ClassVar[tuple[str, ...]] = ('print("hello")\n',)
    INVALID: ClassVar[tuple[str, ...]] = ('print "hello"  # OCDP200\n',)

    @classmethod
    def hit_for(cls, exc: SyntaxError | ValueError | RecursionError) -> Hit:
        if isinstance(exc, RecursionError):
            return Hit(1, 1, "file is nested too deeply to audit; split the deepest expression")
        if isinstance(exc, SyntaxError):
            detail = exc.msg
            return Hit(
                exc.lineno or 1,
                exc.offset or 1,
                f"file does not parse ({detail}), so it was not audited; fix the syntax error",
            )
        return Hit(1, 1, f"file does not parse ({exc}), so it was not audited; fix it")
