# C types for strict_json.py when Cython compiles it (setup.py); the .py file stays the source.
# Earns its place: the strict-JSON overhead over orjson.loads of a Kong record 9.1 → 2.3–3.5 µs, benchmarks/RESULTS.md
# "Decode, 2026-11-26 late night".
cimport cython

@cython.locals(depth=Py_ssize_t, deepest=Py_ssize_t, members=Py_ssize_t, position=Py_ssize_t, length=Py_ssize_t,
               byte=cython.uchar, data="const unsigned char *")
cdef tuple _structure(bytes text)

@cython.locals(byte=cython.uchar)
cdef Py_ssize_t _string_end(const unsigned char *data, Py_ssize_t position, Py_ssize_t length) noexcept

@cython.locals(count=Py_ssize_t)
cdef Py_ssize_t _kept_members(object value) except -1

cpdef object loads(object text, Py_ssize_t max_depth=*)
