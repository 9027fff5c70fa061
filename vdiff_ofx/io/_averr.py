"""Turn PyAV/OS exceptions into one-line user errors, so no PyAV traceback reaches the editor."""

from __future__ import annotations

import contextlib
import errno
from collections.abc import Iterator

import av

from vdiff_ofx.errors import OutputError

_OS_REASONS = {
    errno.ENOSPC: "disk full",
    errno.EACCES: "permission denied",
    errno.EPERM: "permission denied",
    errno.EROFS: "read-only file system",
    errno.ENOENT: "folder does not exist",
    errno.EDQUOT: "disk quota exceeded",
    errno.EISDIR: "is a folder",
}


def reason(exc: BaseException) -> str:
    """Short human reason for a PyAV/OS error (no traceback, no ffmpeg noise)."""
    code = getattr(exc, "errno", None)
    if code in _OS_REASONS:
        return _OS_REASONS[code]
    msg = getattr(exc, "strerror", None) or str(exc)
    return " ".join(str(msg).split()) or type(exc).__name__


@contextlib.contextmanager
def output_errors(path: str, action: str = "cannot write") -> Iterator[None]:
    """Map OSError / FFmpegError raised while writing ``path`` to OutputError."""
    try:
        yield
    except OutputError:
        raise
    except (av.FFmpegError, OSError) as exc:
        raise OutputError(f"{action} {path}: {reason(exc)}") from None
