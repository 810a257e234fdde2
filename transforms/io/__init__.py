"""The IO connectors: sources (files, Pub/Sub, Kinesis), sinks (the analytics API, batch files), dead letters,
the archive, and the acknowledgement of held source records."""
