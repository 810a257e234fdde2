"""Packaging. The metadata lives in pyproject.toml; this file exists for two reasons:

- Dataflow's ``--setup_file`` looks for a setup.py (workers ``pip install`` the package from it);
- the per-event modules (decode, identify, mask) are compiled with Cython when a C compiler is there.

Compiled or not, the code is the same ``.py`` source: Cython compiles those files as they are, and the
``.pxd`` file beside a module (if any) only adds C types to its hot functions. The generated C goes to
``build/cython/``, outside the source tree; only the built ``.so`` lands beside its module.

Where Cython is installed (it is a build requirement), a module that fails to compile fails the build: a
``.pxd`` that no longer matches its ``.py`` is a bug to see, not a reason to ship pure Python quietly. An install
with ``GATEWAYSTREAM_PURE_PYTHON=1`` compiles nothing and runs the same source in CPython: same results, about
2–10x slower per event (``benchmarks/RESULTS.md``).
"""
import os

from setuptools import setup

GENERATED_C_DIR = "build/cython"
COMPILED_MODULES = (
    "transforms/stages/strict_json.py",
    "transforms/stages/gunzip.py",
    "transforms/stages/decode.py",
    "transforms/model/event.py",
    "transforms/stages/identity.py",
    "transforms/stages/names.py",
    "transforms/stages/masking.py",
    "transforms/stages/routes.py",
    "transforms/stages/formats/common.py",
    "transforms/stages/formats/kong.py",
    "transforms/stages/formats/aws_apigateway.py",
    "transforms/stages/formats/wso2.py",
    "transforms/stages/formats/alf.py",
    "transforms/stages/formats/moesif.py",
    "transforms/stages/formats/cloudwatch_logs.py",
    "transforms/stages/formats/firehose.py",
    "transforms/stages/formats/gcp_logging.py",
    "transforms/stages/formats/gcp_http_request.py",
    "transforms/stages/formats/gcp_endpoints.py",
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
    return cythonize(list(COMPILED_MODULES), quiet=True, nthreads=os.cpu_count() or 1, build_dir=GENERATED_C_DIR,
                     compiler_directives={"language_level": 3, "annotation_typing": False})


setup(ext_modules=compiled_extensions(), options={"build_ext": {"parallel": os.cpu_count() or 1}})
