"""Bounding text that comes from user code before it reaches a message, an event or storage."""

from __future__ import annotations

#: the most characters of one error text kept: its start and its end (where the cause is)
LIMIT = 4000


def clip(text: str, limit: int = LIMIT) -> str:
    """``text``, or its start and end with how much was left out between them."""
    if len(text) <= limit:
        return text
    head, tail = limit * 3 // 4, limit // 4
    left_out = len(text) - head - tail
    return f"{text[:head]} ... ({left_out} characters left out) ... {text[-tail:]}"


def error_text(error: BaseException) -> str:
    """``Kind: message`` of an error raised by user code, clipped; its message even when
    the error's own ``__str__`` fails."""
    try:
        message = str(error)
    except Exception as failure:
        message = f"<the message could not be read: {type(failure).__name__}>"
    return f"{type(error).__name__}: {clip(message)}"
