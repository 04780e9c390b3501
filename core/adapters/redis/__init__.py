"""Redis: items, rate limits, slots, token states, Idempotency-Keys and tus uploads."""
