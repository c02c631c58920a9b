"""Stock reservations per order, for order-service only (issue 14)."""
