"""The project's local Moesif-compatible collector: ``python -m pipeline.collector serve|report``."""
from pipeline.collector.server import Collector

__all__ = ["Collector"]
