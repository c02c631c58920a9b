"""shop_common."""
