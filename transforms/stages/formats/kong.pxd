# C types for kong.py when Cython compiles it (setup.py); the .py file stays the source.
# Earns its place: a .pxd per format module and the shared readers cimported from common.pxd, 20 / 14 / 13 → 18.5 /
# 13.1 / 11.9 µs a record (Kong / Moesif / AWS), benchmarks/RESULTS.md "Decode, 2026-11-26 late night".
cimport cython
from transforms.model.event cimport round_half_up
from transforms.stages.formats.common cimport (absolute_url, byte_count, epoch_ms_time, headers_map, is_placeholder,
                                        latency_ms, optional_string, require_object, require_status, require_string)

@cython.locals(request=dict, response=dict, request_headers=dict, request_side=dict, event=dict, metadata=dict)
cpdef dict decode(dict record)

cdef object _user_id(dict record, dict headers)

cdef _add_metadata(dict record, dict request, dict response, dict latencies, dict metadata)
