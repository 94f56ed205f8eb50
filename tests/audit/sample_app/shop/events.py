"""Event names used across the shop."""

ORDER_COMPLETED = "order_completed"
CART_VIEWED = "CartViewed"
