"""Developer tools, not part of the product and not in the wheel workers install: the local services (Pub/Sub
emulator, kinesalite, S3 and GCS servers), the local collector and its report page, the sample traffic and its
senders, and ``localrun`` (what ``./run_local.sh`` runs). They run from a checkout: ``python -m devtools.<tool>``."""
