# C types for aws_apigateway.py when Cython compiles it (setup.py); the .py file stays the source.
# Earns its place: a .pxd per format module and the shared readers cimported from common.pxd, 20 / 14 / 13 → 18.5 /
# 13.1 / 11.9 µs a record (Kong / Moesif / AWS), benchmarks/RESULTS.md "Decode, 2026-11-26 late night".
cimport cython
from transforms.model.event cimport days_in_month, days_since_epoch, round_half_up
from transforms.stages.formats.common cimport (byte_count, epoch_ms_time, is_number, is_placeholder, latency_ms,
                                        optional_string, require_status)

@cython.locals(request_headers=dict, request=dict, metadata=dict, event=dict)
cpdef dict decode(dict record)

cdef object _string(object value)
cdef object _route_template(dict record)
cdef object _request_epoch_ms(dict record)
cdef _add_metadata(dict record, dict metadata)
cdef object _present(dict record, str key)
