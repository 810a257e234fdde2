"""The stages of SPEC §1 between reading and delivering: decode (with its formats), identify, mask, route,
batch; each a pure function of one record or event under a thin Beam shell (``transforms/stages/shell.py``)."""
