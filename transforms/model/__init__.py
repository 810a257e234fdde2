"""The event model: what travels between the stages (raw records, sourced events), the API event itself
(SPEC §2) and the error a bad input raises."""
