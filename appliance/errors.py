"""Typed errors the core raises; adapters map them to exit codes, HTTP or SMTP replies in one place.

Messages are written for the person who caused them, in Japanese first.
"""


class ApplianceError(Exception):
    """Base for errors a user can act on (never a stack trace to a user)."""


class NotFound(ApplianceError):
    """A school, student, message or group named by the user does not exist."""


class InvalidInput(ApplianceError):
    """A value given by the user cannot be accepted."""


class LimitReached(InvalidInput):
    """A per-guardian limit (4 addresses, 4 devices) would be exceeded."""
