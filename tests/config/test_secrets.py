"""No secret in any repr; every configured secret listed for scrubbing (issue 10, item 7)."""

from __future__ import annotations

import base64

from hypothesis import given, settings
from hypothesis import strategies as st

from opencdp import ClientConfig, CustomerIO
from opencdp.redaction import redact_url, scrub

SECRETS = ("cdp-secret-key", "track-secret-key", "app-secret-key", "redis-pass-word",
           "proxy-pass-word", "gw-pass-word")


def loaded() -> ClientConfig:
    return ClientConfig(
        cdp_api_key="cdp-secret-key",
        customer_io=CustomerIO("site-9", "track-secret-key", app_api_key="app-secret-key",
                               track_url="https://cio:gw-pass-word@cio-proxy.example"),
        queue="redis://:redis-pass-word@127.0.0.1:6379/0",
        proxy="http://corp:proxy-pass-word@proxy.internal:3128",
        cdp_endpoint="https://gw:gw-pass-word@gw.example/g",
    )


def test_no_secret_in_any_repr() -> None:
    config = loaded()
    for text in (repr(config), str(config), repr(config.customer_io),
                 repr(config.with_options(debug=True))):
        for secret in SECRETS:
            assert secret not in text, (secret, text)
    assert "redis://:***@127.0.0.1:6379/0" in repr(config)
    assert "http://corp:***@proxy.internal:3128" in repr(config)
    assert "cdp_api_key=<14 chars>" in repr(config)


def test_user_and_password_queue_urls_are_redacted() -> None:
    config = ClientConfig(cdp_api_key="key-1234",
                          queue="rediss://app:s3cr3t-pw@redis.example:6380/2")
    assert "s3cr3t-pw" not in repr(config)
    assert "rediss://app:***@redis.example:6380/2" in repr(config)
    assert "s3cr3t-pw" in config.secrets
    assert redact_url("redis://127.0.0.1:6379/0") == "redis://127.0.0.1:6379/0"
    assert redact_url("redis://:p%40ss@h:1/0") == "redis://:***@h:1/0"


def test_secrets_lists_every_configured_secret_and_its_echoed_forms() -> None:
    config = loaded()
    basic = base64.b64encode(b"site-9:track-secret-key").decode()
    for secret in (*SECRETS, basic):
        assert secret in config.secrets
    assert list(config.secrets) == sorted(config.secrets, key=len, reverse=True)
    encoded = ClientConfig(cdp_api_key="key-1234", queue="redis://:p%40ssword@h:1/0")
    assert {"p%40ssword", "p@ssword"} <= set(encoded.secrets)


def test_scrub_removes_every_secret_from_an_echoed_error_body() -> None:
    config = loaded()
    basic = base64.b64encode(b"site-9:track-secret-key").decode()
    body = ('{"error":"denied","echo":{"Authorization":"cdp-secret-key",'
            f'"X-Forwarded":"Basic {basic}","Proxy-Authorization":"proxy-pass-word"}}}}')
    cleaned = config.scrub(body)
    assert cleaned is not None
    for secret in (*SECRETS, basic):
        assert secret not in cleaned
    assert cleaned.count("<redacted>") == 3 and '"error":"denied"' in cleaned
    assert scrub(None, config.secrets) is None


def test_scrub_takes_the_longest_secret_first_and_ignores_tiny_ones() -> None:
    assert scrub("key=abcd-efgh", ["abcd", "abcd-efgh"]) == "key=<redacted>"
    assert scrub("a key", ["k", None, ""]) == "a key"
    assert scrub("x acte y", ["acte"]) == "x <redacted> y"
    assert scrub("a.b*c a-b-c", ["a.b*c"]) == "<redacted> a-b-c"


@settings(max_examples=200, deadline=None)
@given(st.lists(st.text("xyz0123456789-_", min_size=4, max_size=12), min_size=1, max_size=4),
       st.lists(st.text("xyz0123456789-_ :\"{}", max_size=12), max_size=6))
def test_scrub_leaves_no_configured_secret_in_any_text(secrets: list[str],
                                                       pieces: list[str]) -> None:
    text = "".join(p + s for p, s in zip(pieces, secrets * 3, strict=False)) + secrets[0]
    cleaned = scrub(text, secrets)
    assert cleaned is not None
    for secret in secrets:
        assert secret not in cleaned
