"""gatewaystream's Beam transforms; the pure functions they wrap live beside them (decode, mask, …)."""
