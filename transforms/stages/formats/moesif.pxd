# C types for moesif.py when Cython compiles it (setup.py); the .py file stays the source.
# Earns its place: a .pxd per format module and the shared readers cimported from common.pxd, 20 / 14 / 13 → 18.5 /
# 13.1 / 11.9 µs a record (Kong / Moesif / AWS), benchmarks/RESULTS.md "Decode, 2026-11-26 late night".
cimport cython
from transforms.stages.formats.common cimport (headers_map, is_number, optional_string, require_object, require_status,
                                        require_string)

@cython.locals(request=dict, event=dict)
cpdef dict decode(dict record)

@cython.locals(normalized=dict)
cdef dict _side(dict part, str name)
