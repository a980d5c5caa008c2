"""Errors a user can cause and fix: the CLI prints them as one line and exits with code 2."""

from __future__ import annotations

__all__ = ["TraitlensError"]


class TraitlensError(Exception):
    """Bad input or environment (unknown spec, corrupt file, mismatched vector, ...).

    Raised with a message that is complete on one line; anything else that escapes is a bug.
    """
