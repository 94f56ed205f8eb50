"""``opencdp.cli.progress``: the bar a long command shows on a terminal, and nothing elsewhere."""

from __future__ import annotations

import io
import sys

import pytest

from opencdp.cli import progress

pytest.importorskip("rich")


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_off_a_terminal_there_is_no_bar(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "stderr", io.StringIO())
    with progress("importing", total=10, status=True) as update:
        assert update is None


def test_the_status_bar_shows_the_callers_words_and_the_time_left(
        monkeypatch: pytest.MonkeyPatch) -> None:
    screen = Terminal()
    monkeypatch.setattr(sys, "stderr", screen)
    with progress("importing", total=1000, status=True) as update:
        assert update is not None
        update(500, None, "1,234 records  950/s  3 refused")
        update(600)  # the words stay until the caller changes them
    shown = screen.getvalue()
    assert "1,234 records  950/s  3 refused" in shown
    assert "600/1000" in shown or "500/1000" in shown


def test_a_plain_bar_takes_the_old_two_arguments(monkeypatch: pytest.MonkeyPatch) -> None:
    screen = Terminal()
    monkeypatch.setattr(sys, "stderr", screen)
    with progress("draining") as update:
        assert update is not None
        update(3, 7)
    assert "3/7" in screen.getvalue()
