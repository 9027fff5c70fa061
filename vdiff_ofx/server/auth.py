"""The per-user bearer token: any local process could reach 127.0.0.1, so every request must prove it can read
the user's config folder."""

from __future__ import annotations

import hmac
import os
import secrets
from pathlib import Path

from ..paths import user_dir

TOKEN_FILE = "token"


def token_path() -> Path:
    return user_dir("config") / TOKEN_FILE


def load_or_create_token(path: Path | None = None) -> str:
    """Read the token, creating it on first use (0600, written to a temp file then linked into place, so a
    concurrent reader never sees a half-written token and two first starts agree on one value)."""
    path = path or token_path()
    if path.is_file():
        token = path.read_text(encoding="ascii").strip()
        if token:
            return token
    path.parent.mkdir(parents=True, exist_ok=True)
    token = secrets.token_urlsafe(32)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w", encoding="ascii") as fh:
            fh.write(token + "\n")
        try:
            os.link(tmp, path)  # fails if another process won the race: use its token
        except FileExistsError:
            pass
        except OSError:  # file systems without hard links
            if not path.exists():
                os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path.read_text(encoding="ascii").strip()


def check_header(header: str | None, token: str) -> bool:
    """True when ``Authorization: Bearer <token>`` matches (constant-time, so timing leaks nothing)."""
    if not header:
        return False
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "bearer":
        return False
    return hmac.compare_digest(value.strip().encode(), token.encode())
