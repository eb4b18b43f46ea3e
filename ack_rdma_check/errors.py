"""The two ways the check stops early: bad input from the user, or a cluster that is not ready to measure."""

from __future__ import annotations


class UsageError(Exception):
    """Bad command-line input or stack outputs: one paragraph naming the field and the fix; exit 2."""


class SetupError(Exception):
    """The cluster cannot run the measurement (pod pending, no device, port down, ...): exit 2.

    ``reason`` is a single line that says what was found and, where known, what fixes it.
    """

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason
