"""What the connectors that write files need from Beam's filesystems beyond Beam's own calls."""
from __future__ import annotations

from apache_beam.io.filesystems import FileSystems


def ensure_directory(path: str) -> None:
    """Creates a local directory if needed; object stores (gs://, s3://) have no directories to make."""
    if not FileSystems.exists(path):
        FileSystems.mkdirs(path)
