"""Errors of robot contract loading."""

from __future__ import annotations


class ContractError(ValueError):
    """A robot contract is invalid; the message names the file, the key and the reason."""

    def __init__(self, source: str, key: str, reason: str) -> None:
        self.source, self.key, self.reason = source, key, reason
        super().__init__(f"{source}: {key}: {reason}")
