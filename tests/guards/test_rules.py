"""The rule families' pure functions: timestamps, identifiers, event names and keys."""

from __future__ import annotations

import math
from datetime import date, datetime, timedelta, timezone

import pytest

from opencdp.errors import ValidationError
from opencdp.guards import Finding, GuardPolicy, check_track_key, explain_unauthorized
from opencdp.guards._core import Reporter
from opencdp.guards.events import family, pii_in_name
from opencdp.guards.identifiers import check_identifier
from opencdp.guards.timestamps import to_seconds


def reporter(**policy: object) -> tuple[Reporter, list[Finding]]:
    found: list[Finding] = []
    return Reporter(GuardPolicy(**policy), found.append), found  # type: ignore[arg-type]


@pytest.mark.parametrize(("value", "seconds", "warned"), [
    (1704067200, 1704067200, False),
    (0, 0, False),
    (1704067200.9, 1704067200, False),
    (1704067200000, 1704067200, True),
    (1704067200000.0, 1704067200, True),
    (1704067200123456, 1704067200, True),
    (1704067200123456789, 1704067200, True),
    (datetime(2024, 1, 1, tzinfo=timezone.utc), 1704067200, False),
    (datetime(2024, 1, 1, 1, tzinfo=timezone(timedelta(hours=1))), 1704067200, False),
    (datetime(2024, 1, 1), 1704067200, True),
    (None, None, False),
])
def test_to_seconds(value: object, seconds: int | None, warned: bool) -> None:
    rep, found = reporter()
    assert to_seconds(value, "timestamp", rep) == seconds
    assert bool(found) is warned


@pytest.mark.parametrize("value", ["2024-01-01", True, -1, math.nan, math.inf, date(2024, 1, 1),
                                   2**64, [1]])
def test_to_seconds_refuses_what_is_no_time(value: object) -> None:
    rep, _ = reporter()
    with pytest.raises(ValidationError) as err:
        to_seconds(value, "send_at", rep)
    assert (err.value.code, err.value.field) == ("OCDP103", "send_at")


def test_millisecond_warning_names_the_unit_and_the_conversion() -> None:
    rep, found = reporter()
    to_seconds(1704067200000, "timestamp", rep)
    assert found[0].code == "OCDP101"
    assert "milliseconds, converted to 1704067200" in found[0].message


@pytest.mark.parametrize(("value", "code"), [
    ("ada@example.com", "OCDP111"),
    ("+44 20 7946 0958", "OCDP112"),
    ("+14155550100", "OCDP112"),
    ("user 42", "OCDP114"),
    ("cio_42", "OCDP114"),
    ("tab\there", "OCDP114"),
])
def test_mutable_or_ambiguous_ids_are_warned(value: str, code: str) -> None:
    rep, found = reporter()
    assert check_identifier(value, "user_id", rep) == value
    assert [f.code for f in found] == [code]
    assert value not in found[0].message


@pytest.mark.parametrize("value", ["42", "4155550100", "usr_01HV6", "a1b2-c3d4",
                                   "550e8400-e29b-41d4-a716-446655440000", "ünïcode"])
def test_plain_ids_pass(value: str) -> None:
    rep, found = reporter()
    assert check_identifier(value, "user_id", rep) == value
    assert found == []


def test_id_length_limits() -> None:
    rep, _ = reporter()
    assert check_identifier("é" * 255, "user_id", rep) == "é" * 255  # Customer.io's is later
    with pytest.raises(ValidationError) as err:
        check_identifier("u" * 256, "user_id", rep)
    assert err.value.code == "OCDP113"
    with pytest.raises(ValidationError) as err:
        check_identifier("ab\udce9", "user_id", rep)
    assert (err.value.code, err.value.field) == ("OCDP156", "user_id")


@pytest.mark.parametrize(("name", "kind"), [
    ("viewed_product_83412", "a number (an id?)"),
    ("viewed_product_834", "a number (an id?)"),
    ("order12345", "a number (an id?)"),
    ("email_ada@example.com", "an email address"),
    ("welcome_ada.lovelace+news@example.co.uk", "an email address"),
    ("invoice_3f2a9c1e7b", "a hex id"),
    ("user_550e8400-e29b-41d4-a716-446655440000", "a UUID"),
    ("called_+1 415 555 0100", "a phone number"),
    ("sms_sent_+14155551234", "a phone number"),
    ("called_+44 20 7946 0958", "a phone number"),
    ("sent_to_+1 (415) 555-0100", "a phone number"),
    ("viewed_product_12345678", "a number (an id?)"),
    ("viewed_product_1234567", "a number (an id?)"),
    ("order_14155551234", "a number (an id?)"),
    ("called_06 12 34 56 78", "a number (an id?)"),
    ("order_2024_11_05", "a date"),
    ("signup_2024-11-05", "a date"),
    ("report_2024.11.05", "a date"),
    ("order_20241105", "a date"),
])
def test_pii_in_names(name: str, kind: str) -> None:
    assert pii_in_name(name) == kind


@pytest.mark.parametrize("name", ["viewed_product_12345678", "order_2024_11_05",
                                  "order_20241105", "sku_9780306406157", "batch_2024-11-05_03",
                                  "viewed_product_123456789012345", "ticket_+12345",
                                  "ratio_+1234567890123456789"])
def test_ids_and_dates_are_not_phone_numbers(name: str) -> None:
    """A digit run without ``+`` cannot be told from a product or order number, and a date
    is a date: neither is called a phone number (the name is still refused as an id)."""
    assert pii_in_name(name) not in (None, "a phone number")


@pytest.mark.parametrize("name", ["order_placed", "checkout_step_2", "top_10_viewed",
                                  "sha256_verified", "oauth2_connected", "mp3_played",
                                  "added_to_cart", "deadbeef_seen", "upgraded_to_1.2.3"])
def test_ordinary_names_carry_no_pii(name: str) -> None:
    assert pii_in_name(name) is None


def test_name_families_mask_the_varying_part() -> None:
    assert family("viewed_pricing") == "viewed_*"
    assert family("checkout-step-3") == "checkout-step-*"
    assert family("Page3") == "Page#"


SITE = "a1b2c3d4e5f6a7b8c9d0"
TRACK = "f0e1d2c3b4a596877869"
APP = "0123456789abcdef0123456789abcdef"


@pytest.mark.parametrize(("api_key", "app", "codes"), [
    (TRACK, APP, []),
    (TRACK, None, []),
    (APP, APP, ["OCDP140"]),
    (APP, None, ["OCDP140"]),
    ("sa_live_abcdef", None, ["OCDP140"]),
    (SITE, None, ["OCDP141"]),
])
def test_check_track_key(api_key: str, app: str | None, codes: list[str]) -> None:
    findings = check_track_key(SITE, api_key, app)
    assert [f.code for f in findings] == codes
    for f in findings:
        assert api_key not in f.message and f.field == "api_key"


def test_unauthorized_explanations_tell_the_two_keys_apart() -> None:
    track = explain_unauthorized("track")
    app = explain_unauthorized("app")
    assert "401" in track and "Site ID + Track API key" in track and "App API key" in track
    assert "Bearer" in app and "App API key" in app and track != app
