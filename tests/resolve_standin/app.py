"""Resolve, MediaStorage and the Fusion object with a minimal UIManager (None where the release has none)."""

from __future__ import annotations

import os
from typing import Any, Callable

from .base import ScriptObject
from .pool import MediaPoolItem
from .profiles import Profile
from .project import ProjectManager

# What the free version still answers from 21.1 on.
_FREE_21_1 = {"GetVersion", "GetVersionString", "GetProductName", "IsStudio", "Fusion"}


class MediaStorage(ScriptObject):
    def __init__(self, profile: Profile, pm: ProjectManager) -> None:
        super().__init__(profile)
        self.pm = pm

    def GetMountedVolumeList(self) -> list[str]:
        return ["/"]

    def GetSubFolderList(self, folderPath: str) -> list[str]:
        try:
            return [os.path.join(folderPath, n) for n in sorted(os.listdir(folderPath))
                    if os.path.isdir(os.path.join(folderPath, n))]
        except OSError:
            return []

    def GetFileList(self, folderPath: str) -> list[str]:
        try:
            return [os.path.join(folderPath, n) for n in sorted(os.listdir(folderPath))
                    if os.path.isfile(os.path.join(folderPath, n))]
        except OSError:
            return []

    def AddItemListToMediaPool(self, *items) -> list[MediaPoolItem]:
        paths = list(items[0]) if len(items) == 1 and isinstance(items[0], (list, tuple)) else list(items)
        p = self.pm.GetCurrentProject()
        return p.GetMediaPool().ImportMedia(paths) if p else []


class Element:
    """One UIManager widget: its properties read and written as attributes (Text, Value, Checked...)."""

    def __init__(self, kind: str, props: dict | None = None, children: list | None = None) -> None:
        object.__setattr__(self, "kind", kind)
        object.__setattr__(self, "props", dict(props or {}))
        object.__setattr__(self, "children", list(children or []))
        object.__setattr__(self, "history", [])

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        return self.props.get(name)

    def __setattr__(self, name: str, value: Any) -> None:
        self.props[name] = value
        self.history.append((name, value))

    def AddItem(self, text: str) -> None:
        self.props.setdefault("items", []).append(text)
        self.props.setdefault("CurrentIndex", 0)

    def AddItems(self, texts: list) -> None:
        for t in texts:
            self.AddItem(t)

    def Clear(self) -> None:
        self.props["items"] = []

    def walk(self):
        yield self
        for c in self.children:
            if isinstance(c, Element):
                yield from c.walk()


class UIManager:
    def __getattr__(self, kind: str) -> Callable[..., Element]:
        if kind.startswith("__"):
            raise AttributeError(kind)

        def make(props: Any = None, children: Any = None) -> Element:
            if isinstance(props, list):
                props, children = {}, props
            return Element(kind, props, children)
        return make


class _Handlers:
    def __init__(self) -> None:
        object.__setattr__(self, "by_id", {})

    def __getattr__(self, wid: str) -> Any:
        if wid.startswith("__"):
            raise AttributeError(wid)
        return self.by_id.setdefault(wid, Element("events"))


class Window:
    def __init__(self, props: dict, children: Any, dispatcher: "Dispatcher") -> None:
        self.props, self.dispatcher = props, dispatcher
        self.root = children if isinstance(children, Element) else Element("VGroup", {}, list(children or []))
        self.On = _Handlers()
        self.shown = False
        self.closed = False

    def GetItems(self) -> dict[str, Element]:
        return {e.ID: e for e in self.root.walk() if e.ID}

    def Find(self, wid: str) -> Element | None:
        return self.GetItems().get(wid)

    def Show(self) -> None:
        self.shown = True

    def Hide(self) -> None:
        self.shown = False
        self.closed = True

    def RecalcLayout(self) -> None:
        pass

    def fire(self, wid: str, event: str = "Clicked") -> None:
        """Test hook: the user clicks ``wid`` (or closes the window when ``wid`` is the window's ID)."""
        handler = self.On.by_id.get(wid)
        fn = handler.props.get(event) if handler else None
        if fn:
            fn({"who": wid, "what": event})


class Dispatcher:
    """bmd.UIDispatcher(ui): AddWindow, RunLoop, ExitLoop. RunLoop hands the window to the test's ``driver``."""

    def __init__(self, ui: UIManager, driver: Callable[[Window], None] | None) -> None:
        self.ui, self.driver, self.windows, self.running = ui, driver, [], False

    def AddWindow(self, props: dict, children: Any = None) -> Window:
        w = Window(props, children, self)
        self.windows.append(w)
        return w

    def RunLoop(self) -> None:
        self.running = True
        if self.driver and self.windows:
            self.driver(self.windows[-1])
        self.running = False

    def ExitLoop(self) -> None:
        self.running = False


class Fusion(ScriptObject):
    _api_name = "Fusion"

    def __init__(self, profile: Profile, app: "Resolve") -> None:
        super().__init__(profile)
        self.app = app
        self.ui = UIManager() if profile.ui_manager else None

    @property
    def UIManager(self) -> UIManager | None:
        return self.ui

    def GetResolve(self) -> "Resolve":
        return self.app


class Resolve(ScriptObject):
    def __init__(self, profile: Profile) -> None:
        super().__init__(profile)
        self.pm = ProjectManager(profile)
        self.storage = MediaStorage(profile, self.pm)
        self.fusion = Fusion(profile, self)
        self.page = "edit"

    def __getattribute__(self, name: str) -> Any:
        attr = super().__getattribute__(name)
        if name[:1].isupper() and name not in _FREE_21_1 and not object.__getattribute__(self, "_profile").scripting:
            return None
        return attr

    def Fusion(self) -> Fusion:
        return self.fusion

    def GetMediaStorage(self) -> MediaStorage:
        return self.storage

    def GetProjectManager(self) -> ProjectManager:
        return self.pm

    def GetProductName(self) -> str:
        return "DaVinci Resolve Studio" if self._profile.studio else "DaVinci Resolve"

    def GetVersion(self) -> list:
        return [*self._profile.version, 10, ""]

    def GetVersionString(self) -> str:
        return self._profile.version_string

    def IsStudio(self) -> bool:
        return self._profile.studio

    def OpenPage(self, pageName: str) -> bool:
        if pageName not in ("media", "cut", "edit", "fusion", "color", "fairlight", "deliver"):
            return False
        self.page = pageName
        return True

    def GetCurrentPage(self) -> str:
        return self.page


class Bmd:
    """The ``bmd`` global: scriptapp("Resolve"/"Fusion") and UIDispatcher(ui)."""

    def __init__(self, resolve: Resolve, driver: Callable[[Window], None] | None = None) -> None:
        self.resolve, self.driver = resolve, driver
        self.dispatchers: list[Dispatcher] = []

    def scriptapp(self, name: str, *args) -> Any:
        return {"Resolve": self.resolve, "Fusion": self.resolve.fusion}.get(name)

    def UIDispatcher(self, ui: UIManager) -> Dispatcher:
        d = Dispatcher(ui, self.driver)
        self.dispatchers.append(d)
        return d
