"""Packaging. The metadata lives in pyproject.toml; this file exists for two reasons:

- Dataflow's ``--setup_file`` looks for a setup.py (workers ``pip install`` the package from it);
- the per-event modules (decode, identify, mask) are compiled with Cython when a C compiler is there.

Compiled or not, the code is the same ``.py`` source: Cython compiles those files as they are, and the
``.pxd`` file beside a module (if any) only adds C types to its hot functions. A module whose compilation
fails, or an install with ``GATEWAYSTREAM_PURE_PYTHON=1``, runs the same source in CPython: same results,
about 2–10x slower per event (``benchmarks/RESULTS.md``).
"""
import os

from setuptools import setup

COMPILED_MODULES = (
    "transforms/strict_json.py",
    "transforms/gunzip.py",
    "transforms/decode.py",
    "transforms/event.py",
    "transforms/identity.py",
    "transforms/names.py",
    "transforms/masking.py",
    "transforms/routes.py",
    "transforms/formats/common.py",
    "transforms/formats/kong.py",
    "transforms/formats/aws_apigateway.py",
    "transforms/formats/wso2.py",
    "transforms/formats/alf.py",
    "transforms/formats/moesif.py",
    "transforms/formats/cloudwatch_logs.py",
    "transforms/formats/firehose.py",
    "transforms/formats/gcp_logging.py",
    "transforms/formats/gcp_http_request.py",
    "transforms/formats/gcp_endpoints.py",
)


def compiled_extensions() -> list:
    if os.environ.get("GATEWAYSTREAM_PURE_PYTHON"):
        return []
    try:
        from Cython.Build import cythonize
    except ImportError:
        return []
    # annotation_typing=False: the modules' type hints are documentation (a `float` hint must still accept an
    # int at run time, as CPython does); C types come only from the .pxd files.
    extensions = cythonize(list(COMPILED_MODULES), quiet=True, nthreads=os.cpu_count() or 1,
                           compiler_directives={"language_level": 3, "annotation_typing": False})
    for extension in extensions:
        extension.optional = True  # a failed compile keeps the pure-Python module (a warning), not a failed install
    return extensions


setup(ext_modules=compiled_extensions(), options={"build_ext": {"parallel": os.cpu_count() or 1}})
