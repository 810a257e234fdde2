"""The error every decoding step raises for bad input; ``reason`` is a stable SPEC §3 code."""


class DecodeError(Exception):
    """A record (or one element of it) that breaks the contract; ``reason`` is a stable code (SPEC §3)."""

    def __init__(self, reason: str, detail: str):
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail
