"""The front door (``python -m pipeline.ingest``): an HTTP service gateways send to by changing one URL, which writes
what they send durably to the Pub/Sub topic or Kinesis stream the pipeline reads. ``app`` serves the Moesif
collection API, Kong's http-log and Firehose's HTTP endpoint delivery; ``bodies`` checks and splits bodies;
``brokers`` publishes them."""
