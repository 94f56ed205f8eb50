"""OCDP201: credentials written into the source."""

from __future__ import annotations

import ast
import re
from collections.abc import Callable, Iterator
from typing import ClassVar

from .. import sdk
from ..analysis import ModuleModel
from ..model import Severity
from ..rule import Hit, PythonRule
from ._common import dict_items, is_test_module, string_key

__all__ = ["HardcodedCredential"]

_KEY_NAME = re.compile(
    r"(?:^|_)(?:api_?key|write_?key|site_?id|track_?key|app_?key|cdp_?key|secret(?:_?key)?"
    r"|access_?token|auth_?token|private_?key|signing_?key)$",
    re.IGNORECASE,
)
_PLACEHOLDER = re.compile(
    r"\s*|x+|\*+|\.+|<[^>]*>|\$\{[^}]*\}|\{\{.*\}\}|%\(\w+\)s"
    r"|(?:your|my)[-_ ].*|change[-_ ]?me|replace[-_ ]?me|todo|fixme|redacted|none|null"
    r"|(?-i:[A-Z][A-Z0-9]*(?:_[A-Z0-9]+)+)",
    re.IGNORECASE,
)
_TOKEN = re.compile(r"[\x21-\x7e]{6,}")
_WORD = re.compile(r"[a-z]+")
_PLACEHOLDER_WORDS = frozenset(
    {"test", "testing", "sandbox", "example", "dummy", "fake", "placeholder", "demo", "sample",
     "mock", "local"}
)
_NAME_WORDS = frozenset(
    {"api", "app", "key", "secret", "token", "site", "id", "write", "track", "cdp", "access",
     "auth", "private", "signing"}
)
_ENV_READERS = frozenset({"os.getenv", "os.environ.get", "os.environ.setdefault"})
_CLIENT_OPTIONS = sdk.CONFIG_CLASSES["opencdp.ClientConfig"]
_CUSTOMERIO_OPTIONS = sdk.CONFIG_CLASSES["opencdp.CustomerIO"]
_FROM_ENVIRONMENT = "read it from the environment (os.environ, Client.from_env())"


def _key_like(name: str) -> bool:
    return bool(_KEY_NAME.search(name))


def _secret_literal(expr: ast.expr) -> bool:
    """A token-shaped string literal (six or more printable ASCII characters, no spaces) that
    is not a placeholder or an environment variable's name."""
    if not (isinstance(expr, ast.Constant) and isinstance(expr.value, str)):
        return False
    if not _TOKEN.fullmatch(expr.value):
        return False
    words = set(_WORD.findall(expr.value.lower()))
    if words & _PLACEHOLDER_WORDS or (words <= _NAME_WORDS and not any(
        c.isdigit() for c in expr.value
    )):
        return False
    return _PLACEHOLDER.fullmatch(expr.value) is None


_Reporter = Callable[[ast.expr, str], Iterator[Hit]]


def _settings(node: ast.AST) -> Iterator[tuple[str, ast.expr]]:
    """``(name, value)`` where a node sets framework settings that hold ``Client`` options:
    ``OPENCDP = {...}``, ``app.config["OPENCDP"] = {...}``, ``config.update(OPENCDP={...})``."""
    if isinstance(node, ast.keyword) and node.arg in sdk.SETTINGS_NAMES:
        yield node.arg, node.value
        return
    if isinstance(node, ast.Assign):
        targets, value = node.targets, node.value
    elif isinstance(node, ast.AnnAssign) and node.value is not None:
        targets, value = [node.target], node.value
    else:
        return
    for target in targets:
        if isinstance(target, ast.Name) and target.id in sdk.SETTINGS_NAMES:
            yield target.id, value
        elif isinstance(target, ast.Subscript):
            key = string_key(target.slice)
            if key in sdk.SETTINGS_NAMES:
                yield key, value


def _settings_credentials(name: str, value: ast.expr) -> Iterator[tuple[str, str, ast.expr]]:
    """``(where, option, value)`` for each credential option in framework settings, those of
    a nested ``customer_io`` dict included."""
    for option, expr in _options(value):
        where = f"{name}['{option}']"
        if any(slot.keyword == option for slot in _CLIENT_OPTIONS.secrets):
            yield where, option, expr
        elif option == "customer_io":
            for nested, nested_expr in _options(expr):
                if any(slot.keyword == nested for slot in _CUSTOMERIO_OPTIONS.secrets):
                    yield f"{where}['{nested}']", nested, nested_expr


def _options(expr: ast.expr) -> Iterator[tuple[str, ast.expr]]:
    """The options of a dict display or a ``dict(...)`` call."""
    if isinstance(expr, ast.Dict):
        yield from dict_items(expr)
    elif isinstance(expr, ast.Call) and isinstance(expr.func, ast.Name) and (
        expr.func.id == "dict"
    ):
        for kw in expr.keywords:
            if kw.arg is not None:
                yield kw.arg, kw.value


class HardcodedCredential(PythonRule):
    """A literal API key, site id or secret passed to a client or assigned to a key-like name.

    Keys in source end up in version control, logs and screenshots, and rotating them needs a
    deploy. Read them from the environment (``Client.from_env()`` reads ``CDP_API_KEY`` and
    the ``CUSTOMERIO_*`` variables) or a secret store. Framework settings that hold client
    options (Django's ``OPENCDP = {...}``, Flask's ``app.config["OPENCDP"]``) need no key:
    the integrations fill it in from the environment, so a literal ``cdp_api_key`` there, or
    in its nested ``customer_io`` dict, is reported by its setting. Only token-shaped literals
    count (six or more printable ASCII characters without spaces); placeholders such as
    ``""``, ``"<your-key>"``, ``"changeme"``, ``"write-key"`` or values with a word like
    ``test``, ``sandbox`` or ``example`` in them are not reported, nor are test files and
    test helpers (``test_*.py``, ``conftest.py``, ``testing.py``).
    """

    code = "OCDP201"
    name = "hardcoded-credential"
    severity = Severity.ERROR
    message = "hard-coded credential; read it from the environment (os.environ, Client.from_env())"
    VALID: ClassVar[tuple[str, ...]] = (
        """\
import os

from customerio import CustomerIO

cio = CustomerIO(os.environ["CUSTOMERIO_SITE_ID"], os.environ["CUSTOMERIO_TRACK_API_KEY"])
""",
        """\
from opencdp import Client

client = Client.from_env()
""",
        """\
import os

CUSTOMERIO_API_KEY = os.environ.get("CUSTOMERIO_API_KEY", "")
API_KEY_ENV = "CUSTOMERIO_API_KEY"
""",
        """\
# settings.py: the API key comes from CDP_API_KEY
OPENCDP = {"queue": "sqlite:///var/lib/shop/opencdp.db"}
""",
    )
    INVALID: ClassVar[tuple[str, ...]] = (
        """\
from customerio import CustomerIO

cio = CustomerIO("abc123", "3f8a9c0e1d2b4a6f")  # OCDP201, OCDP201
""",
        """\
from opencdp import Client

client = Client(cdp_api_key="cdp_live_8d7e6f5a4b3c")  # OCDP201
""",
        """\
import os

CUSTOMERIO_SITE_ID = "2f1e0d9c8b7a"  # OCDP201
TRACK_API_KEY = os.getenv("CUSTOMERIO_TRACK_API_KEY", "3f8a9c0e1d2b4a6f")  # OCDP201
""",
        """\
# settings.py
OPENCDP = {
    "cdp_api_key": "cdp_live_8d7e6f5a4b3c",  # OCDP201
    "queue": "sqlite:///var/lib/shop/opencdp.db",
}
""",
    )

    def check(self, model: ModuleModel) -> Iterator[Hit]:
        if is_test_module(model.path):
            return
        reported: set[int] = set()

        def report(expr: ast.expr, what: str, advice: str = _FROM_ENVIRONMENT) -> Iterator[Hit]:
            if id(expr) not in reported and _secret_literal(expr):
                reported.add(id(expr))
                yield self.hit(expr, f"hard-coded credential in `{what}`; {advice}")

        for call, qualified, _scope in model.constructor_calls():
            credential = sdk.CONFIG_CLASSES.get(qualified)
            if credential is not None:
                for slot in credential.secrets:
                    arg = _argument(call, slot)
                    if arg is not None:
                        yield from report(arg, f"{qualified.rsplit('.', 1)[-1]}({slot.keyword})")
            if qualified in _ENV_READERS and len(call.args) >= 2:
                variable = string_key(call.args[0])
                if variable is not None and _key_like(variable):
                    yield from report(call.args[1], f"default of {variable}")
        for node in model.nodes:
            for name, value in _settings(node):
                for where, option, secret in _settings_credentials(name, value):
                    variable = sdk.SETTINGS_ENVIRONMENT[option]
                    advice = f"leave it out: the environment fills it in ({variable})"
                    yield from report(secret, where, advice)
            yield from self._named(node, report)

    @staticmethod
    def _named(node: ast.AST, report: _Reporter) -> Iterator[Hit]:
        if isinstance(node, ast.keyword) and node.arg and _key_like(node.arg):
            yield from report(node.value, node.arg)
        elif isinstance(node, (ast.Assign, ast.AnnAssign)) and node.value is not None:
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            for target in targets:
                name = target.id if isinstance(target, ast.Name) else (
                    target.attr if isinstance(target, ast.Attribute) else None
                )
                if name and _key_like(name):
                    yield from report(node.value, name)
        elif isinstance(node, ast.Dict):
            for key, value in dict_items(node):
                if _key_like(key):
                    yield from report(value, key)
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            args = node.args
            positional = [*args.posonlyargs, *args.args]
            with_defaults = positional[len(positional) - len(args.defaults) :]
            for arg, default in zip(with_defaults, args.defaults, strict=True):
                if _key_like(arg.arg):
                    yield from report(default, arg.arg)
            for arg, kw_default in zip(args.kwonlyargs, args.kw_defaults, strict=True):
                if kw_default is not None and _key_like(arg.arg):
                    yield from report(kw_default, arg.arg)


def _argument(call: ast.Call, slot: sdk.Slot) -> ast.expr | None:
    for kw in call.keywords:
        if kw.arg == slot.keyword:
            return kw.value
    if slot.position is not None and slot.position < len(call.args):
        arg = call.args[slot.position]
        if not any(isinstance(a, ast.Starred) for a in call.args[: slot.position + 1]):
            return arg
    return None
