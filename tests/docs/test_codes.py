"""Every code the package emits has an entry, every entry is emitted, and ``opencdp explain``
prints each one from the installed package."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from click.testing import CliRunner

from opencdp import codes
from opencdp.cli import main
from opencdp.logs import Log

SRC = Path(codes.__file__).resolve().parent
ALL = sorted(codes.entries())


def emitted() -> dict[str, set[str]]:
    """Every code written anywhere in the package's Python source, with the files."""
    found: dict[str, set[str]] = {}
    for path in SRC.rglob("*.py"):
        if path.name == "codes.py":  # the registry names ranges, not codes it emits
            continue
        for code in re.findall(r"OCDP\d{3}", path.read_text(encoding="utf-8")):
            found.setdefault(code, set()).add(str(path.relative_to(SRC)))
    return found


def test_every_code_the_package_emits_has_an_entry() -> None:
    missing = {code: sorted(files) for code, files in emitted().items()
               if code not in codes.entries()}
    assert not missing, (
        f"codes without an entry (add one to src/opencdp/codes.md): {missing}")


def test_every_entry_is_emitted_somewhere() -> None:
    unused = sorted(set(codes.entries()) - set(emitted()))
    assert not unused, f"entries for codes nothing in src/opencdp emits: {unused}"


def test_the_scan_can_fail() -> None:
    assert {"OCDP101", "OCDP201", "OCDP305", "OCDP345"} <= set(emitted())
    assert len(ALL) >= 80


@pytest.mark.parametrize("code", ALL)
def test_every_entry_has_the_four_parts(code: str) -> None:
    entry = codes.entries()[code]
    positions = [entry.body.find(f"**{label}**") for label in codes.SECTIONS]
    assert -1 not in positions and positions == sorted(positions), (code, positions)
    assert "```" in entry.body.split("**Example.**")[1], f"{code}: the example is a block"
    assert entry.level in ("error", "warning", "info") and entry.title


def test_the_page_has_an_anchor_per_code() -> None:
    page = codes.render_page()
    for code in ALL:
        assert f"{{ #{code.lower()} }}" in page, code
        assert f"]({'#' + code.lower()})" in page, code  # in its group's table


@pytest.mark.parametrize("code", ALL)
def test_explain_prints_every_code(code: str) -> None:
    result = CliRunner().invoke(main, ["explain", code])
    assert result.exit_code == 0, result.output
    entry = codes.entries()[code]
    assert result.output.startswith(f"{code} ({entry.level}): {entry.title}\n")
    for label in codes.SECTIONS:
        assert label in result.output
    assert "**" not in result.output and "```" not in result.output
    assert codes.page_url(code) in result.output


def test_explain_takes_short_and_lower_case_codes_and_several() -> None:
    result = CliRunner().invoke(main, ["explain", "305", "ocdp101"])
    assert result.exit_code == 0
    assert result.output.startswith("OCDP305 ") and "\nOCDP101 (warning)" in result.output


def test_explain_refuses_an_unknown_code_as_a_usage_error() -> None:
    for args in (["explain", "OCDP999"], ["explain", "nonsense"], ["explain"]):
        result = CliRunner().invoke(main, args)
        assert result.exit_code == 2, (args, result.output)
        assert "Traceback" not in result.output
    assert "OCDP301-311" in CliRunner().invoke(main, ["explain", "OCDP999"]).output


def test_explain_json_and_list() -> None:
    result = CliRunner().invoke(main, ["explain", "--json", "OCDP302"])
    (entry,) = json.loads(result.output)
    assert entry["code"] == "OCDP302" and entry["url"].endswith("/codes/#ocdp302")
    listed = CliRunner().invoke(main, ["explain", "--list"]).output.splitlines()
    assert [line.split()[0] for line in listed] == ALL


def test_codes_md_ships_in_the_package() -> None:
    from importlib import resources

    assert resources.files("opencdp").joinpath("codes.md").is_file()


class Lines:
    def __init__(self) -> None:
        self.lines: list[str] = []

    def debug(self, msg: str) -> None:
        self.lines.append(msg)

    warning = error = info = debug


def test_log_lines_that_name_a_code_end_with_where_to_read_about_it() -> None:
    sink = Lines()
    log = Log(sink, debug=True)
    log.warning("[CDP] OCDP303 dead-lettered 2 message(s): OCDP305 HTTP 401")
    log.error("[CDP] OCDP306 error in the delivery lane")
    log.warning_once("k", "[CDP] OCDP341 flush() from a signal handler")
    log.info("[CDP] OCDP342 closed with 3 pending")
    log.debug("[Customer.io] Identified user123")
    assert sink.lines == [
        "[CDP] OCDP303 dead-lettered 2 message(s): OCDP305 HTTP 401 "
        "(opencdp explain OCDP303 OCDP305)",
        "[CDP] OCDP306 error in the delivery lane (opencdp explain OCDP306)",
        "[CDP] OCDP341 flush() from a signal handler (opencdp explain OCDP341)",
        "[CDP] OCDP342 closed with 3 pending (opencdp explain OCDP342)",
        "[Customer.io] Identified user123",  # no code, nothing added
    ]
    for line in sink.lines[:-1]:
        named = re.findall(r"OCDP\d{3}", line.split("(opencdp explain")[0])
        assert line.endswith(f"(opencdp explain {' '.join(dict.fromkeys(named))})")


def test_the_reference_is_added_once() -> None:
    once = codes.with_reference("OCDP306 boom")
    assert codes.with_reference(once) == once


def test_refusals_carry_their_code_for_explain() -> None:
    from opencdp import ValidationError
    from opencdp.testing import capture

    with capture() as cap, pytest.raises(ValidationError) as info:
        cap.client.track("user_1", "Viewed Product 123")
    assert info.value.code in codes.entries()
    assert str(info.value).startswith(info.value.code)
