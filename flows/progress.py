"""Progress of a long batch, reported to whoever is watching (the CLI's Rich bar, or nobody).

The flow runs in the CLI's process, so a module-level reporter is enough; flows never print.
"""

from __future__ import annotations

from typing import Protocol


class Reporter(Protocol):
    def start(self, total: int, description: str) -> None: ...

    def advance(self, path: str, outcome: str) -> None: ...

    def note(self, message: str) -> None: ...


class _Silent:
    def start(self, total: int, description: str) -> None:
        pass

    def advance(self, path: str, outcome: str) -> None:
        pass

    def note(self, message: str) -> None:
        pass


_reporter: Reporter = _Silent()


def set_reporter(reporter: Reporter | None) -> None:
    global _reporter
    _reporter = reporter or _Silent()


def reporter() -> Reporter:
    return _reporter
