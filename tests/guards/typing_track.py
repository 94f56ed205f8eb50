"""Type-checked by test_schemas.py, never run: how checkers see a typed track() call.

Lines marked ``# error`` must be reported by mypy; every other line must be clean.
``Tracker`` carries the two overloads the client's ``track`` uses.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any, TypedDict, TypeVar, overload

from opencdp.guards import Event, Schemas

P = TypeVar("P")


class Tracker:
    @overload
    def track(self, user_id: str, event: Event[P], properties: P) -> None: ...
    @overload
    def track(self, user_id: str, event: str,
              properties: Mapping[str, Any] | None = None) -> None: ...
    def track(self, user_id: str, event: object, properties: object = None) -> None:
        return None


class OrderPlaced(TypedDict):
    order_id: str
    total: float


@dataclasses.dataclass
class Refunded:
    order_id: str


schemas = Schemas()
ORDER_PLACED = schemas.event("order_placed", OrderPlaced)
REFUNDED = schemas.event("order_refunded", Refunded)
client = Tracker()

client.track("42", ORDER_PLACED, OrderPlaced(order_id="A1", total=9.99))
client.track("42", ORDER_PLACED, OrderPlaced(order_id="A1", total="9.99"))  # error
client.track("42", ORDER_PLACED, OrderPlaced(order_id="A1"))  # error
client.track("42", ORDER_PLACED, Refunded(order_id="A1"))  # error
client.track("42", REFUNDED, Refunded(order_id="A1"))
client.track("42", REFUNDED, Refunded(order_id=1))  # error
client.track("42", "page_viewed", {"path": "/"})
client.track("42", "page_viewed")
client.track("42", "page_viewed", 5)  # error
order: OrderPlaced = {"order_id": "A1", "total": 9.99}
client.track("42", ORDER_PLACED, order)
