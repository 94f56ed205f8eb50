"""Type-checked by test_typing.py, never run: how checkers see the options.

Lines marked ``# error`` must be reported by mypy; every other line must be clean.
``make`` has the signature ``Client(**options: Unpack[ClientOptions])`` is given.
"""

from __future__ import annotations

import logging
import sys

from opencdp import BreakerConfig, ClientConfig, ClientOptions, CustomerIO

if sys.version_info >= (3, 11):
    from typing import Unpack
else:
    from typing_extensions import Unpack


def make(**options: Unpack[ClientOptions]) -> ClientConfig:
    return ClientConfig(**options)


def on_error(message: object, destination: str, reason: str) -> None:
    return None


make(cdp_api_key="k", timeout=5, debug=True, retry={"max_attempts": 3})
make(cdp_api_key="k", breaker=BreakerConfig(), rate_limits={"customerio": None})
make(cdp_api_key="k", customer_io=CustomerIO("site", "key"), send_to_customer_io=None)
make(cdp_api_key="k", customer_io={"site_id": "s", "api_key": "k", "region": "eu"})
make(cdp_api_key="k", logger=logging.getLogger("app"), on_error=on_error, silence={"OCDP115"})
make(cdp_api_key="k", cdp_fallback_endpoints=[], max_queue_bytes=None, proxy=None)
make(cdp_api_key="k", sent_to_customer_io=True)  # error
make(cdp_api_key="k", flush_at=100)  # error
make(cdp_api_key="k", timeout="5")  # error
make(cdp_api_key="k", batch_size="big")  # error
make(cdp_api_key="k", debug="false")  # error
make(cdp_api_key="k", delivery="sync")  # error
make(cdp_api_key="k", retry={"max_attempt": 3})  # error
make(cdp_api_key="k", customer_io={"site": "s"})  # error
make(cdp_api_key="k", on_error="log")  # error
ClientConfig(cdp_api_key="k", queue_full="drop_newest")  # error
ClientConfig.from_env(shutdown_timout=5)  # error
ClientConfig(cdp_api_key="k").with_options(max_queue_bytes="1MB")  # error
options: ClientOptions = {"cdp_api_key": "k", "batch_size": 10}
typo: ClientOptions = {"cdp_api_key": "k", "batchsize": 10}  # error
