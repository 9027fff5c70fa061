"""Base for stand-in scripting objects: unknown names answer None (Resolve's objects never raise AttributeError),
and a method the profile's release lacks answers None too, so callers must test callable(getattr(obj, name))."""

from __future__ import annotations

import itertools
import uuid
from typing import Any

from .profiles import Profile

_ids = itertools.count(1)


def new_id() -> str:
    return str(uuid.UUID(int=next(_ids)))


class ScriptObject:
    _api_name = ""

    def __init__(self, profile: Profile) -> None:
        object.__setattr__(self, "_profile", profile)

    def __getattribute__(self, name: str) -> Any:
        attr = object.__getattribute__(self, name)
        if name[:1].isupper():
            cls = object.__getattribute__(self, "_api_name") or type(self).__name__
            if not object.__getattribute__(self, "_profile").has(cls, name):
                return None
        return attr

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        return None

    def __repr__(self) -> str:
        return f"<{self._api_name or type(self).__name__} standin>"
