# C types for identity.py when Cython compiles it (setup.py); the .py file stays the source.
# Earns its place: without it identify runs at 141k instead of 200k events/s per core, identify + mask 5–8 % slower
# (benchmarks/RESULTS.md, "Which .pxd files pay").
cimport cython
from transforms.stages.names cimport LoweredNames

cdef class WantedHeaders:
    cdef public dict slots
    cdef public list positions
    cdef public list exact_names
    cdef public LoweredNames lowered

    @cython.locals(found=list, exact=list, known=dict)
    cpdef list find(self, dict headers)

    @cython.locals(slot=Py_ssize_t)
    cpdef object value(self, list found, Py_ssize_t index)

cpdef object jwt_claims(str authorization)
cpdef object jwt_payload(str authorization)
cpdef object payload_claims(str payload)
cpdef object claim(dict claims, str field)

@cython.locals(wanted=WantedHeaders, request=dict, in_request=list, in_response=list, found=dict)
cpdef dict identify(dict event, object settings)

cdef class DecodedTokens:
    cdef public dict known
    cpdef object claims(self, str authorization)

@cython.locals(index=Py_ssize_t)
cdef object _first_jwt(WantedHeaders wanted, list in_request, Py_ssize_t count, DecodedTokens tokens)
