# C types for decode.py when Cython compiles it (setup.py); the .py file stays the source.
# Earns its place: the decoder's state as a C class, 31 / 19.6 / 19.6 → 26.5 / 16.2 / 15.7 µs a record (Kong / Moesif
# / AWS), benchmarks/RESULTS.md "Decode, 2026-11-26 late night".
cimport cython
from transforms.stages.strict_json cimport loads as strict_loads
from transforms.stages.formats.common cimport is_ascii_space

cdef class _RecordDecoder:
    cdef public bytes raw
    cdef public object transaction_ids
    cdef public object forced_name, forced_leaf, forced_container
    cdef public Py_ssize_t inflate_budget, next_index, elements, control_messages, max_depth, max_elements
    cdef public list events, dead_letters

    cpdef reject(self, str reason, str detail, str source, bytes payload)
    cpdef add_dead_letter(self, str reason, str detail, str source, bytes payload)
    cpdef decode_bytes(self, bytes data, str source, Py_ssize_t nesting)
    cpdef _decode_lines(self, bytes data, str source, Py_ssize_t nesting)
    cpdef _decode_line(self, bytes line, str source, Py_ssize_t nesting)
    cpdef _decode_items(self, object value, str source, bytes raw, object format_name, Py_ssize_t nesting)
    cpdef _decode_object(self, dict value, str source, object raw, object format_name, Py_ssize_t nesting)
    cpdef _unwrap(self, object module, dict value, str source, object raw, Py_ssize_t nesting)
    cpdef _decode_part(self, object part, str source, object raw, dict container, Py_ssize_t nesting)
    cpdef _count(self, str source)
    @cython.locals(index=Py_ssize_t)
    cpdef _decode_leaf(self, str name, object decode, dict element, str source, object raw)

@cython.locals(decoder=_RecordDecoder)
cpdef object decode_record(object record, object settings=*)

cdef bint _opens_json(bytes data)
cdef bint _has_newline(bytes data)
@cython.locals(byte=cython.uchar)
cdef bint _is_space_at(bytes data, Py_ssize_t position)
cdef object _detect_container(dict value)
cdef object _detect_leaf(dict value)
