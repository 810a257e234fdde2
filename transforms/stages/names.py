"""Case-insensitive name matching without lower-casing every name of every event.

Header, query and body field names repeat across events, and ``str.lower`` allocates a new string each
time; these memos lower each distinct name once. Each holds at most ``NAME_CACHE_LIMIT`` names and then
starts over, so hostile traffic with endless distinct names costs time, never unbounded memory.

Hot loops read ``memo.known`` (a plain dict: its ``get`` is one C call when compiled) and call
``memo.learn(name)`` on a miss; other code indexes the memo, ``memo[name]``.
"""
from __future__ import annotations

NAME_CACHE_LIMIT = 10_000


class LoweredNames:
    """name → ``name.lower()``."""

    def __init__(self) -> None:
        self.known: dict[str, str] = {}

    def __getitem__(self, name: str) -> str:
        lowered = self.known.get(name)
        return self.learn(name) if lowered is None else lowered

    def learn(self, name: str) -> str:
        if len(self.known) >= NAME_CACHE_LIMIT:
            self.known.clear()
        lowered = self.known[name] = name.lower()
        return lowered


class MatchedNames:
    """name → whether ``name.lower()`` is one of ``wanted`` (lower-cased names)."""

    def __init__(self, wanted: frozenset[str]):
        self.wanted = wanted
        self.known: dict[str, bool] = {}

    def __getitem__(self, name: str) -> bool:
        matched = self.known.get(name)
        return self.learn(name) if matched is None else matched

    def learn(self, name: str) -> bool:
        if len(self.known) >= NAME_CACHE_LIMIT:
            self.known.clear()
        matched = self.known[name] = name.lower() in self.wanted
        return matched
