"""Dropping log messages that say nothing to lift_mm's users, one message at a time."""
import contextlib
import logging
import re
from typing import Iterator


class MessageFilter(logging.Filter):
    """Drops the log records whose message matches ``pattern`` (``re.search``); every other record passes.

    Args:
        pattern (str): Regular expression of the messages to drop.
    """

    def __init__(self, pattern: str) -> None:
        super().__init__()
        self.pattern = re.compile(pattern)

    def filter(self, record: logging.LogRecord) -> bool:
        return self.pattern.search(record.getMessage()) is None


def drop_messages(logger: logging.Logger, pattern: str) -> None:
    """Drop the messages of ``logger`` that match ``pattern`` from now on; adding a pattern twice adds one filter."""
    if not any(isinstance(f, MessageFilter) and f.pattern.pattern == pattern for f in logger.filters):
        logger.addFilter(MessageFilter(pattern))


@contextlib.contextmanager
def messages_dropped(logger: logging.Logger, pattern: str) -> Iterator[None]:
    """Drop the messages of ``logger`` that match ``pattern`` inside the ``with`` block only."""
    message_filter = MessageFilter(pattern)
    logger.addFilter(message_filter)
    try:
        yield
    finally:
        logger.removeFilter(message_filter)
