# C types for strict_json.py when Cython compiles it (setup.py); the .py file stays the source.
cimport cython

@cython.locals(depth=Py_ssize_t, deepest=Py_ssize_t, members=Py_ssize_t, in_string=bint, escaped=bint,
               byte=cython.uchar)
cdef tuple _structure(bytes text)

@cython.locals(count=Py_ssize_t)
cdef Py_ssize_t _kept_members(object value) except -1
