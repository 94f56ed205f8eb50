"""A configuration error never echoes a value that could be a credential (a key in the
wrong argument, a key in a URL's user part), and a repr never shows one."""

from __future__ import annotations

import pytest

from opencdp import Client, CustomerIO
from opencdp.errors import ConfigurationError

SECRET = "SECRETkey0123456789abcdef"


@pytest.mark.parametrize("endpoint", [f"ftp://{SECRET}@example.com", f"{SECRET}@example.com",
                                      f"ftp://user:{SECRET}@example.com"])
def test_an_endpoint_error_hides_its_user_part(endpoint: str) -> None:
    with pytest.raises(ConfigurationError) as caught:
        Client(cdp_api_key="key-1234", cdp_endpoint=endpoint, register_atexit=False)
    assert SECRET not in str(caught.value)
    assert "***@example.com" in str(caught.value)


def test_a_user_part_in_an_endpoint_is_masked_and_scrubbed() -> None:
    client = Client(cdp_api_key="key-1234", cdp_endpoint=f"https://{SECRET}@example.com/x",
                    register_atexit=False, start_worker=False)
    try:
        assert SECRET not in repr(client)
        assert "https://***@example.com/x" in repr(client)
        assert SECRET in client.config.secrets
        assert SECRET not in (client.config.scrub(f"echoed {SECRET}") or "")
    finally:
        client.close(0.1)


@pytest.mark.parametrize("third", ["APP_KEY", "0123456789abcdef0123456789abcdef"])
def test_a_key_given_as_the_region_is_not_echoed(third: str) -> None:
    with pytest.raises(ConfigurationError) as caught:
        CustomerIO("site", "TRACK_KEY", third)
    text = str(caught.value)
    assert third not in text
    assert f"a string of {len(third)} characters" in text and "app_api_key=" in text


def test_a_key_in_any_option_is_not_echoed() -> None:
    with pytest.raises(ConfigurationError) as caught:
        Client(cdp_api_key="key-1234", queue_full=SECRET, register_atexit=False)  # type: ignore[arg-type]
    assert SECRET not in str(caught.value)
    assert f"a string of {len(SECRET)} characters" in str(caught.value)
    with pytest.raises(ConfigurationError) as named:
        Client(cdp_api_key="key-1234", queue_full="drop_newest", register_atexit=False)  # type: ignore[arg-type]
    assert "'drop_newest'" in str(named.value)  # an ordinary wrong word is still shown
