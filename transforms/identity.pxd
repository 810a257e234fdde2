# C types for identity.py when Cython compiles it (setup.py); the .py file stays the source.
cimport cython
from transforms.names cimport LoweredNames

cdef class WantedHeaders:
    cdef public dict slots
    cdef public list positions
    cdef public list exact_names
    cdef public LoweredNames lowered

    @cython.locals(found=list, exact=list, known=dict)
    cpdef list find(self, dict headers)

    @cython.locals(slot=Py_ssize_t)
    cpdef object value(self, list found, Py_ssize_t index)
