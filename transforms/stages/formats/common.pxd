# C types for common.py when Cython compiles it (setup.py); the .py file stays the source. The format modules
# cimport the helpers declared cpdef here, so that their calls are C calls rather than Python calls.
# Earns its place: a .pxd per format module and the shared readers cimported from common.pxd, 20 / 14 / 13 → 18.5 /
# 13.1 / 11.9 µs a record (Kong / Moesif / AWS), benchmarks/RESULTS.md "Decode, 2026-11-26 late night".
cimport cython
from transforms.model.event cimport format_epoch_ms, parse_iso_ms

cpdef bint is_number(object value)
cpdef bint is_placeholder(object value)
cpdef bint is_ascii_space(long byte) noexcept
cpdef dict require_object(dict container, str key, str path)
cpdef str require_string(dict container, str key, str path)
cpdef object require_status(object value, str path, bint numeric_string=*)
cpdef str epoch_ms_time(object value, str path)
cpdef object iso_time_ms(object value, str path)
cpdef object latency_ms(object value, str path, bint numeric_string=*)
cpdef object byte_count(object value)
cpdef object optional_string(object value)
cpdef dict headers_map(object value, str path)
cpdef dict header_list_map(object value, str path)

@cython.locals(host_start=Py_ssize_t, length=Py_ssize_t, position=Py_ssize_t, port_end=Py_ssize_t, port=long)
cpdef str absolute_url(str value, str path)

cdef bint _is_host_char(Py_UCS4 char)

cdef bint _all_strings(dict headers)

@cython.locals(length=Py_ssize_t, point=Py_ssize_t, whole=Py_ssize_t, position=Py_ssize_t)
cdef bint _is_decimal(str text)
