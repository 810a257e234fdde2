# C types for gunzip.py when Cython compiles it (setup.py); the .py file stays the source.
cpdef bint is_gzip(bytes data)
