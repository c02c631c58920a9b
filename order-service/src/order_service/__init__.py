"""order-service: checkout with stock reservation, payment, shipment and expiry."""
