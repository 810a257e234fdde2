# C types for common.py when Cython compiles it (setup.py); the .py file stays the source.
cimport cython

@cython.locals(host_start=Py_ssize_t, length=Py_ssize_t, position=Py_ssize_t, port_end=Py_ssize_t, port=long)
cpdef str absolute_url(str value, str path)

cdef bint _is_host_char(Py_UCS4 char)

cdef bint _all_strings(dict headers)

@cython.locals(length=Py_ssize_t, point=Py_ssize_t, whole=Py_ssize_t, position=Py_ssize_t)
cdef bint _is_decimal(str text)
