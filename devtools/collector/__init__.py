"""The project's local Moesif-compatible collector: ``python -m devtools.collector serve|report``."""
from devtools.collector.server import Collector

__all__ = ["Collector"]
