# C types for event.py when Cython compiles it (setup.py); the .py file stays the source.
# Earns its place: times read and written digit by digit and UUIDv5 ids written from the digest in C
# (benchmarks/RESULTS.md, "Decode, 2026-11-26 late night" and "Decode, 2026-11-27"); event.py's C branches
# (cython.compiled) need these types: compiled without them, decoding fails ("Which .pxd files pay").
cimport cython

@cython.locals(length=Py_ssize_t, year=long, month=long, day=long, hour=long, minute=long, second=long, milli=long,
               count=Py_ssize_t, fraction=long, millis=long)
cpdef object _parse_common_form(str text)

@cython.locals(value=long, position=Py_ssize_t, digit=long)
cdef long _digits(str text, Py_ssize_t start, Py_ssize_t end)

cpdef long days_in_month(long year, long month)

@cython.locals(era=long, year_of_era=long, day_of_year=long, day_of_era=long)
cpdef long days_since_epoch(long year, long month, long day)

cdef class TransactionIds:
    cdef bytes _raw_record
    cdef object _record_state
    cpdef str for_index(self, Py_ssize_t index)

cpdef object round_half_up(object value)
cpdef str format_epoch_ms(object epoch_ms)
cpdef object parse_iso_ms(object text)
cdef str _time_text(object epoch_ms)

@cython.locals(days=long, millis=long, days_since_year_0=long, era=long, day_of_era=long, year_of_era=long,
               day_of_year=long, month_from_march=long, day=long, month=long, year=long)
cdef str _time_text_in_c(long epoch_ms)

@cython.locals(offset=Py_ssize_t)
cdef void _put_digits(char* text, Py_ssize_t position, long value, Py_ssize_t count) noexcept

cdef bytes _HEX_DIGITS

@cython.locals(data="const unsigned char *", hex_digits="const char *", position=Py_ssize_t, index=Py_ssize_t,
               byte=cython.uchar)
cdef str _uuid5_text_in_c(bytes digest)
