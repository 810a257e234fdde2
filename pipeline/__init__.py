"""gatewaystream's entry point (``python -m pipeline``), options and pipeline graph."""
