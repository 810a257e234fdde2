# C types for moesif.py when Cython compiles it (setup.py); the .py file stays the source.
cimport cython
from transforms.stages.formats.common cimport (headers_map, is_number, optional_string, require_object, require_status,
                                        require_string)

@cython.locals(request=dict, event=dict)
cpdef dict decode(dict record)

@cython.locals(normalized=dict)
cdef dict _side(dict part, str name)
