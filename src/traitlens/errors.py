"""Errors a user can cause and fix: the CLI prints them as one line and exits with code 2."""

from __future__ import annotations

__all__ = ["TraitlensError"]


class TraitlensError(Exception):
    """Bad input or environment (unknown spec, corrupt file, mismatched vector, ...).

    Raised with a message that is complete on one line; anything else that escapes is a bug.
    Line breaks that arrive with user data (a key, a file name) are shown escaped, so the message
    stays one line whatever the input.
    """

    def __init__(self, message: str = "", *args: object) -> None:
        text = str(message).replace("\r", "\\r").replace("\n", "\\n")
        super().__init__(text, *args)
