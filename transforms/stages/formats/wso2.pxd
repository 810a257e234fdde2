# C types for wso2.py when Cython compiles it (setup.py); the .py file stays the source.
# Earns its place: a .pxd per format module and the shared readers cimported from common.pxd, 20 / 14 / 13 → 18.5 /
# 13.1 / 11.9 µs a record (Kong / Moesif / AWS), benchmarks/RESULTS.md "Decode, 2026-11-26 late night".
cimport cython
from transforms.model.event cimport format_epoch_ms, round_half_up
from transforms.stages.formats.common cimport (byte_count, epoch_ms_time, headers_map, is_ascii_space, is_number,
                                        is_placeholder, iso_time_ms, latency_ms, optional_string, require_status)

@cython.locals(properties=dict, metadata=dict, request=dict, response=dict, event=dict)
cpdef dict decode(dict record)

cdef dict _properties(dict record)
cdef str _join_path(str context, str template)

@cython.locals(dots=long, digits=long, octet=long, char=Py_UCS4)
cdef bint _is_ipv4(str text)

cdef _copy_body(dict properties, str key, str encoding_key, dict side)

cdef _add_metadata(dict record, dict properties, dict metadata)

@cython.locals(marker=Py_ssize_t)
cpdef object metrics_log_line(bytes line)

cdef object _event_after_marker(bytes line, Py_ssize_t position)

@cython.locals(byte=cython.uchar)
cdef Py_ssize_t _after_spaces(bytes line, Py_ssize_t position)

@cython.locals(offset=Py_ssize_t, found=cython.uchar, expected=cython.uchar)
cdef bint _has_at(bytes line, Py_ssize_t position, bytes token)

cdef str _required_text(object value, str path)
cpdef object _real_ip(object value)
@cython.locals(name=str)
cdef object _user_id(object value)
