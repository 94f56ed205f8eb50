"""OCDP210: a marketing email template without an unsubscribe link."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import PurePosixPath
from typing import ClassVar

from ..model import Severity
from ..rule import Hit, TemplateRule
from ..templates import Template, TemplateSet

__all__ = ["EmailUnsubscribe", "is_email_template", "is_transactional"]

_EMAIL_WORDS = frozenset(
    {"email", "emails", "mail", "mails", "mailer", "mailers", "newsletter", "newsletters",
     "campaign", "campaigns", "digest"}
)
_TRANSACTIONAL_WORDS = frozenset(
    {"transactional", "password", "reset", "verify", "verification", "confirm",
     "confirmation", "receipt", "invoice", "otp", "magic", "login", "signin", "security",
     "2fa", "mfa"}
)
_WORD_SPLIT = re.compile(r"[^a-z0-9]+")
_TEMPLATE_EXPRESSION = re.compile(r"\{[{%][^}]*unsubscribe[^}]*[}%]\}", re.IGNORECASE)
_MARKER = "opencdp: transactional"


def _words(path: str) -> set[str]:
    pure = PurePosixPath(path.lower())
    words: set[str] = set()
    for part in (*pure.parent.parts, pure.stem):
        words.update(w for w in _WORD_SPLIT.split(part) if w)
    return words


def is_email_template(template: Template) -> bool:
    """Named on the command line, or found under a path that says email (``emails/``,
    ``newsletter.html``, ``welcome_email.html``...)."""
    return template.explicit or bool(_words(template.relative) & _EMAIL_WORDS)


def is_transactional(template: Template) -> bool:
    """Marked ``<!-- opencdp: transactional -->``, or named like a transactional message
    (``transactional/``, ``password_reset``, ``receipt``, ``verify``...)."""
    if any(_MARKER in text.lower() for _, text in template.scan.comments):
        return True
    return bool(_words(template.relative) & _TRANSACTIONAL_WORDS)


def _has_unsubscribe(template: Template) -> bool:
    if any("unsubscribe" in href.lower() for _, href in template.scan.links):
        return True
    return _TEMPLATE_EXPRESSION.search(template.text) is not None


class EmailUnsubscribe(TemplateRule):
    """A non-transactional email template with no unsubscribe link.

    Marketing email without a working unsubscribe link breaks CAN-SPAM/GDPR rules and turns
    readers who want out into spam complaints, which hurt deliverability for every message.
    Add ``<a href="{{ unsubscribe_url }}">Unsubscribe</a>`` (Customer.io fills it in).
    Templates are email templates when named on the command line or found under a path that
    says so (``emails/``, ``*newsletter*``); transactional ones (``transactional/``,
    ``password_reset``, ``receipt``... or marked ``<!-- opencdp: transactional -->``) and
    layouts that other templates extend are skipped; ``{% extends %}`` and ``{% include %}``
    are followed.
    """

    code = "OCDP210"
    name = "email-without-unsubscribe"
    severity = Severity.WARNING
    message = "marketing email template has no unsubscribe link; add {{ unsubscribe_url }}"
    EXAMPLE_PATH = "templates/emails/newsletter.html"
    VALID: ClassVar[tuple[str, ...]] = (
        """\
<html>
  <body>
    <p>Hi {{ customer.first_name }}, here is what's new this week.</p>
    <a href="{{ unsubscribe_url }}">Unsubscribe</a>
  </body>
</html>
""",
        """\
<!-- opencdp: transactional -->
<html>
  <body>
    <p>Use this link to reset your password: {{ reset_url }}</p>
  </body>
</html>
""",
    )
    INVALID: ClassVar[tuple[str, ...]] = (
        """\
<html>
  <body> <!-- OCDP210 -->
    <p>Hi {{ customer.first_name }}, here is what's new this week.</p>
  </body>
</html>
""",
    )

    def check_template(self, template: Template, templates: TemplateSet) -> Iterator[Hit]:
        if not is_email_template(template) or is_transactional(template):
            return
        if templates.is_extended(template):
            return
        family, complete = templates.closure(template)
        if not complete or any(_has_unsubscribe(t) for t in family):
            return
        yield Hit(template.report_line, 1, None)
