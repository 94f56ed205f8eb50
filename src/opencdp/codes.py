"""Every OCDP code, explained: the registry behind ``opencdp explain`` and the codes page.

A code comes from one of three sources, each the only place it is described:

- a guard rule class (``opencdp.guards``, OCDP1xx): its docstring says what and why, its
  ``message`` what to do, its ``bad``/``good`` examples are run by the tests;
- an audit rule class (``opencdp.audit.rules``, OCDP2xx): the same, for ``opencdp audit``;
- ``codes.md`` beside this module, for every other code (the engine, the queues, the
  configuration, the transactional sends...): one ``## OCDPnnn: title`` entry each.

``codes.md`` is Markdown rather than Python data because its entries are prose with examples,
edited by people and shown as they are (on the site and, lightly stripped, in a terminal); it
ships inside the package, so ``opencdp explain`` needs no network and always describes the
installed version. Adding a code is adding one entry to it (the template is at its top);
``tests/docs/test_codes.py`` fails while a code the package emits has no entry, or an entry's
code is emitted nowhere.

Log lines that name a code end with where to read about it (``reference``); the logger seam
(``opencdp.logs``) appends it, so a new log line gets it without doing anything.
"""

from __future__ import annotations

import functools
import re
import textwrap
from dataclasses import dataclass
from importlib import resources
from typing import Final

__all__ = [
    "CODE",
    "SITE_URL",
    "Entry",
    "entries",
    "lookup",
    "normalize",
    "page_url",
    "reference",
    "render_page",
    "render_text",
    "spans",
    "with_reference",
]

SITE_URL: Final = "https://opencdp.readthedocs.io/en/latest/"
"""The documentation site (``site_url`` in ``mkdocs.yml``)."""

CODE: Final = re.compile(r"\bOCDP\d{3}\b")
"""What a code looks like, wherever it appears."""

_HEADING: Final = re.compile(r"^## (OCDP\d{3}): (.+)$", re.M)
_LEVEL: Final = re.compile(r"\Alevel: (error|warning|info)\n")
SECTIONS: Final = ("What it means.", "Why it matters.", "What to do.", "Example.")
"""The four parts every entry has, in this order, each opening a bold paragraph."""

_GROUPS: Final = (
    (100, 199, "At the call (OCDP1xx)",
     "The guards and checks that run on your thread when you call the client. Refusals raise "
     "`ValidationError` with `.code` and `.field`; warnings are logged once per cause and "
     "counted in `health().guards`. More in [Pitfall guards](guards.md)."),
    (200, 299, "In the audit (OCDP2xx)",
     "Findings of `opencdp audit` over a code base. More in [The audit](audit.md)."),
    (300, 349, "Delivery, queues and configuration (OCDP3xx)",
     "What the engine, the queues and the configuration report, in log lines, dead-letter "
     "reasons and `ConfigurationError`."),
    (350, 399, "Migration (OCDP350-OCDP399)",
     "What the importer, hold mode and `opencdp migrate` report."),
)


@dataclass(frozen=True, slots=True)
class Entry:
    """One code's explanation.

    ``body`` is Markdown with the four parts of ``SECTIONS``; ``source`` says where it is
    written (``"guards"``, ``"audit"`` or ``"codes.md"``); ``more`` is the site page (relative
    to the site's root, with its anchor) that says more, if any.
    """

    code: str
    title: str
    level: str
    body: str
    source: str
    more: str | None = None

    @property
    def anchor(self) -> str:
        """The entry's anchor on the codes page: ``ocdp305``."""
        return self.code.lower()


def normalize(text: str) -> str | None:
    """``"OCDP305"``, ``"ocdp305"`` or ``"305"`` -> ``"OCDP305"``; anything else -> None."""
    match = re.fullmatch(r"(?:ocdp)?(\d{3})", text.strip(), re.I)
    return f"OCDP{match.group(1)}" if match else None


def page_url(code: str) -> str:
    """The code's entry on the site: ``https://.../codes/#ocdp305``."""
    return f"{SITE_URL}codes/#{code.lower()}"


def reference(codes: list[str] | tuple[str, ...]) -> str:
    """Where to read about ``codes``: ``(opencdp explain OCDP303 OCDP305)``."""
    return f"(opencdp explain {' '.join(codes)})"


def with_reference(message: str) -> str:
    """``message`` ending with the ``reference`` of the codes it names (in order, once each);
    unchanged when it names none or already ends with one."""
    found = list(dict.fromkeys(CODE.findall(message)))
    if not found or "(opencdp explain " in message:
        return message
    return f"{message.rstrip()} {reference(found)}"


@functools.cache
def entries() -> dict[str, Entry]:
    """Every documented code, sorted by code."""
    found = {**_guard_entries(), **_audit_entries()}
    for entry in _file_entries():
        if entry.code in found:
            raise RuntimeError(f"{entry.code} is described twice (codes.md and a rule class)")
        found[entry.code] = entry
    return dict(sorted(found.items()))


def lookup(text: str) -> Entry | None:
    """The entry for a code as a user typed it (see ``normalize``), or None."""
    code = normalize(text)
    return entries().get(code) if code else None


def _file_entries() -> list[Entry]:
    text = resources.files(__package__).joinpath("codes.md").read_text(encoding="utf-8")
    parts = _HEADING.split(text)
    found: list[Entry] = []
    for code, title, after in zip(parts[1::3], parts[2::3], parts[3::3], strict=True):
        rest = after.lstrip("\n")
        level = _LEVEL.match(rest)
        if level is None:
            raise RuntimeError(f"codes.md: {code} needs a 'level: error|warning|info' line")
        body = rest[level.end():].strip()
        if any(e.code == code for e in found):
            raise RuntimeError(f"codes.md: {code} has two entries")
        found.append(Entry(code, title.strip(), level.group(1), body, "codes.md"))
    return found


def _guard_entries() -> dict[str, Entry]:
    from .guards import RULES
    from .guards.docs import example_lines, rule_level, rule_notes, rule_title

    doing = {"refused": "The call is refused: `ValidationError` naming the field.",
             "warning": "A warning, logged once per cause and interval and counted in "
                        "`health().guards`; refused with `strict=True`.",
             "hint": "A hint at debug level (`email_hint=` sets the level).",
             "Customer.io dead letter": "The Customer.io copy is dead-lettered with this code "
                                        "before sending; OpenCDP still gets the message."}
    found = {}
    for code, rule in RULES.items():
        paragraphs = [" ".join(p.split()) for p in (rule.__doc__ or "").strip().split("\n\n")]
        level = rule_level(rule)
        notes = rule_notes(rule).lstrip(", ")
        means = f"{paragraphs[0]} {doing[level]}" + (f" ({notes})" if notes else "")
        why = " ".join(paragraphs[1:]) or paragraphs[0]
        examples = []
        for which, label in (("bad", "Bad"), ("good", "Good")):
            lines: list[str] = []
            for i, example in enumerate(rule.examples(which)):  # type: ignore[arg-type]
                lines += [""] * bool(i) + example_lines(example)
            examples.append(f"{label}:\n\n```python\n" + "\n".join(lines) + "\n```")
        body = _body(means, why, _sentence(rule.message), "\n\n".join(examples))
        found[code] = Entry(code, rule_title(rule), _GUARD_LEVEL[level], body, "guards",
                            f"guards.md#{code.lower()}")
    return found


_GUARD_LEVEL: Final = {"refused": "error", "warning": "warning", "hint": "info",
                       "Customer.io dead letter": "error"}


def _audit_entries() -> dict[str, Entry]:
    from .audit.rules import all_rules

    found = {}
    for rule in all_rules():
        examples = []
        for label, sources in (("Bad", rule.INVALID), ("Good", rule.VALID)):
            if sources:
                examples.append(f"{label}:\n\n```{rule.LANGUAGE}\n{sources[0].rstrip()}\n```")
        means = (f"{rule.summary()} Reported by `opencdp audit` as `{rule.name}` "
                 f"({rule.severity.value}); `# noqa: {rule.code}` on the line suppresses it.")
        body = _body(means, rule.explanation() or rule.summary(), _sentence(rule.message),
                     "\n\n".join(examples))
        found[rule.code] = Entry(rule.code, rule.name, rule.severity.value, body, "audit",
                                 "audit.md")
    return found


def _body(means: str, why: str, todo: str, example: str) -> str:
    return "\n\n".join(f"**{label}** {text}" if label != "Example." else f"**{label}**\n\n{text}"
                       for label, text in zip(SECTIONS, (means, why, todo, example),
                                              strict=True))


def _sentence(text: str) -> str:
    text = text.strip()
    return text[:1].upper() + text[1:] + ("" if text.endswith(".") else ".")


def render_page() -> str:
    """The codes page's body (Markdown for the site): every entry under its group, each with
    an anchor named after its code (``#ocdp305``)."""
    out: list[str] = []
    by_group: dict[int, list[Entry]] = {}
    for entry in entries().values():
        number = int(entry.code[4:])
        index = next(i for i, (low, high, *_) in enumerate(_GROUPS) if low <= number <= high)
        by_group.setdefault(index, []).append(entry)
    for index, group in sorted(by_group.items()):
        _, _, title, intro = _GROUPS[index]
        out += [f"## {title}", "", intro, ""]
        out += ["| Code | Level | What |", "|---|---|---|"]
        out += [f"| [{e.code}](#{e.anchor}) | {e.level} | {e.title} |" for e in group]
        out.append("")
        for entry in group:
            out += [f"### {entry.code}: {entry.title} {{ #{entry.anchor} }}", "",
                    f"*Level: {entry.level}*", "", entry.body, ""]
            if entry.more:
                out += [f"More: [{entry.more.split('#')[0]}]({entry.more}).", ""]
    return "\n".join(out)


def render_text(entry: Entry) -> str:
    """An entry for a terminal: the Markdown's emphasis and fences dropped, code indented."""
    lines = [f"{entry.code} ({entry.level}): {entry.title}", ""]
    fenced = False
    prose: list[str] = []
    for line in [*entry.body.replace("**", "").splitlines(), ""]:
        if line.startswith("```"):
            fenced = not fenced
            continue
        if fenced:
            lines.append(f"    {line}" if line else line)
        elif line:
            prose.append(line)
        else:
            if prose:
                lines += [*textwrap.wrap(" ".join(prose), 88), ""]
            prose = []
    if lines[-1]:
        lines.append("")
    lines.append(f"Online: {page_url(entry.code)}")
    if entry.more:
        page, _, anchor = entry.more.partition("#")
        lines.append(f"More: {SITE_URL}{page.removesuffix('.md')}/"
                     + (f"#{anchor}" if anchor else ""))
    return "\n".join(lines) + "\n"


def spans() -> list[str]:
    """The documented codes as ranges: ``["OCDP101-104", "OCDP110-115", ...]``."""
    numbers = sorted(int(code[4:]) for code in entries())
    spans: list[list[int]] = []
    for n in numbers:
        if spans and n == spans[-1][1] + 1:
            spans[-1][1] = n
        else:
            spans.append([n, n])
    return [f"OCDP{a}" if a == b else f"OCDP{a}-{b}" for a, b in spans]
