# C types for the hot functions of masking.py when Cython compiles it (setup.py); the .py file stays the source.
# Earns its place: bodies walked once in C types, benchmarks/RESULTS.md "Identify + mask alone" ("Bodies are walked
# once, in C types").
cimport cython
from transforms.stages.names cimport LoweredNames, MatchedNames

@cython.locals(known=dict, masked=dict)
cpdef dict mask_headers(dict headers, object masked_names)

@cython.locals(question=Py_ssize_t, end=Py_ssize_t, hits=MatchedNames, known=dict, pieces=list, copied=Py_ssize_t,
               start=Py_ssize_t, stop=Py_ssize_t, equals=Py_ssize_t, char=Py_UCS4, name=str)
cpdef str mask_query(str uri, object masked_names)

cdef class _SizeBound:
    cdef public Py_ssize_t total

cpdef object _mask_fields(object value, MatchedNames hits, LoweredNames lowered, tuple paths, _SizeBound size)

@cython.locals(copy=dict, known_hits=dict, known_lowered=dict, below=tuple, key=str)
cdef dict _mask_object(dict value, MatchedNames hits, LoweredNames lowered, tuple paths, _SizeBound size)

@cython.locals(copy=list, position=Py_ssize_t)
cdef list _mask_array(list value, MatchedNames hits, LoweredNames lowered, tuple paths, _SizeBound size)

@cython.locals(total=Py_ssize_t)
cpdef Py_ssize_t _size_bound(object value) except -1

@cython.locals(below=tuple, path=tuple)
cdef tuple _paths_below(str name, tuple paths)

cpdef object _mask_urls(object value, MatchedNames masked_names)
