"""The one exception type that reaches the user as a single line (no traceback)."""


class LanganError(Exception):
    """A user-facing failure: the message names the thing that is wrong and how to fix it."""
