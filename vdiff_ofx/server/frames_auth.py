"""Token and address discovery for the frame protocol.

The token is the same per-user file the HTTP server uses (``vdiff_ofx.server.auth``), so creating it is
atomic and shared; this module only adds the constant-time check and the ``frames.addr`` file that tells
clients where the frame server listens.
"""

from __future__ import annotations

import hmac
import os
from pathlib import Path

from ..paths import user_dir
from .auth import load_or_create_token, token_path

__all__ = [
    "address_file",
    "load_or_create_token",
    "read_address",
    "remove_address",
    "token_matches",
    "token_path",
    "write_address",
]

ADDRESS_FILE = "frames.addr"


def token_matches(given: str, token: str) -> bool:
    """Constant-time comparison, so response timing leaks nothing about the token."""
    return hmac.compare_digest(given.strip().encode("utf-8"), token.encode("utf-8"))


def address_file() -> Path:
    return user_dir("config") / ADDRESS_FILE


def write_address(address: str) -> None:
    """Publish ``unix:<path>`` or ``tcp:127.0.0.1:<port>`` (atomic replace: clients never read half a line)."""
    path = address_file()
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(address + "\n", encoding="utf-8")
    os.replace(tmp, path)


def read_address() -> str | None:
    try:
        return address_file().read_text(encoding="utf-8").strip() or None
    except OSError:
        return None


def remove_address(address: str) -> None:
    """Remove the address file only if it still names ``address`` (never a newer server's)."""
    if read_address() == address:
        try:
            address_file().unlink()
        except OSError:
            pass
