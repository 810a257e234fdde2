# Compiled (setup.py), the memos are C classes: the hot loops of masking and identity read `known` directly.
# Earns its place: without it identify + mask is 5–10 % slower (benchmarks/RESULTS.md, "Which .pxd files pay").
cdef class LoweredNames:
    cdef public dict known
    cpdef str learn(self, str name)

cdef class MatchedNames:
    cdef public frozenset wanted
    cdef public dict known
    cpdef bint learn(self, str name) except -1
