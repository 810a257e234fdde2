# C types for alf.py when Cython compiles it (setup.py); the .py file stays the source.
# Earns its place: a .pxd per format module and the shared readers cimported from common.pxd, 20 / 14 / 13 → 18.5 /
# 13.1 / 11.9 µs a record (Kong / Moesif / AWS), benchmarks/RESULTS.md "Decode, 2026-11-26 late night".
cimport cython
from transforms.model.event cimport format_epoch_ms, round_half_up
from transforms.stages.formats.common cimport (absolute_url, epoch_ms_time, header_list_map, iso_time_ms, latency_ms,
                                        optional_string, require_object, require_status, require_string)

@cython.locals(request=dict, response=dict, metadata=dict, request_side=dict, response_side=dict)
cpdef dict decode(dict document)

cdef _copy_body(object content, dict part, str path, dict side)
