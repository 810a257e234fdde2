"""Packaging shim for Dataflow's ``--setup_file``: workers run ``pip install .`` from it.

All metadata lives in pyproject.toml; this file only exists because Dataflow's
staging step looks for a setup.py.
"""
from setuptools import setup

setup()
