"""What every hub command shares, whichever protocol carried it."""

from __future__ import annotations

from asgiref.sync import sync_to_async


class CommandError(Exception):
    """A command refused with one of Centrifugo's error codes (the reply says why; nothing changed)."""

    def __init__(self, code: int, message: str):
        super().__init__(message)
        self.code = code


def run_sync(func, *args, **kwargs):
    """A blocking (Redis) call off the event loop."""
    return sync_to_async(func, thread_sensitive=False)(*args, **kwargs)
