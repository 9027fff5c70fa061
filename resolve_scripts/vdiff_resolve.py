"""vdiff for DaVinci Resolve: the logic behind the vdiff menu scripts (standard library only, Python 3.10+).

The heavy work runs in the vdiff server; this module only reads the timeline, submits jobs, polls them and places
the results, so Resolve's UI never waits on a model. Everything that touches Resolve's scripting API goes through
``call``/``has`` (a method a release lacks answers None there, never AttributeError) and the small ``Timeline*``
readers below; the planning in between works on plain ``Shot`` records.

Run from the menu this file only explains itself: use the "vdiff ..." entries next to it.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable

HERE = Path(__file__).resolve().parent if "__file__" in globals() else Path.cwd()

DEFAULTS: dict[str, Any] = {
    "model": "denoise",         # a name from `vdiff models`, or "auto" (the clip's analysis picks it)
    "strength": None,           # model strength (None: the model's default; "auto": measured on each shot)
    "tta": 1,                   # 1/2/4/8 flipped views averaged per frame (8: final renders, 8x the time)
    "fields": "auto",           # interlaced sources: auto, separate, woven or progressive (see `vdiff enhance -h`)
    "handles": 12,              # extra frames each side, where the source has them
    "placement": "above",       # "above": new track over the original; "swap": same, and the original disabled
    "output_dir": "",           # where enhanced media goes ("" : <vdiff data folder>/resolve-media)
    "codec": "prores_hq",       # ProRes 422 HQ
    "bin": "vdiff",             # media pool bin for the results
    "mark_color": "Orange",     # fallback selection: clips with this clip colour...
    "mark_flag": "",            # ...or this flag colour
    "tracks": [],               # Enhance Timeline / Batch: video track numbers ([]: all)
    "render_preset": "",        # Batch: render preset name ("": the project's current render settings)
    "render_dir": "",           # Batch: render target folder ("": <output_dir>/renders)
    "batch_timelines": [],      # Batch: timeline names ([]: media pool selection, else the current timeline)
    "poll_seconds": 0.5,
    "server_wait_seconds": 60,  # how long to wait for a server started on demand
}
CODECS = ["prores_hq", "prores_4444", "dnxhr_hqx", "h264", "h264_10bit", "h265", "h265_10bit", "ffv1"]
FINISHED = ("done", "failed", "cancelled")
RENDER_FINISHED = ("Complete", "Failed", "Cancelled")


# ----------------------------------------------------------------------------------------------- folders, settings
def user_dir(kind: str) -> Path:
    """The user's vdiff folder of ``kind`` (config, data, log), the same rules as vdiff_ofx/paths.py."""
    override = os.environ.get(f"VDIFF_{kind.upper()}_DIR")
    if override:
        return Path(override)
    home = Path.home()
    if sys.platform == "win32":
        root = Path(os.environ.get("LOCALAPPDATA" if kind in ("cache", "log") else "APPDATA",
                                   home / "AppData" / "Roaming"))
        return root / "vdiff" / kind
    if sys.platform == "darwin":
        sub = {"config": "Application Support", "data": "Application Support", "cache": "Caches", "log": "Logs"}[kind]
        return home / "Library" / sub / "vdiff" / (kind if kind in ("config", "data") else "")
    env = {"config": "XDG_CONFIG_HOME", "data": "XDG_DATA_HOME", "cache": "XDG_CACHE_HOME", "log": "XDG_STATE_HOME"}
    default = {"config": ".config", "data": ".local/share", "cache": ".cache", "log": ".local/state"}
    return Path(os.environ.get(env[kind]) or home / default[kind]) / "vdiff" / ("log" if kind == "log" else "")


def settings_path() -> Path:
    return user_dir("config") / "resolve.json"


def load_settings() -> dict[str, Any]:
    """Saved settings over the defaults; a broken file falls back to defaults rather than stopping the script."""
    s = dict(DEFAULTS)
    try:
        saved = json.loads(settings_path().read_text(encoding="utf-8"))
        if isinstance(saved, dict):
            s.update({k: v for k, v in saved.items() if k in DEFAULTS})
    except (OSError, ValueError):
        pass
    return s


def save_settings(s: dict[str, Any]) -> Path:
    path = settings_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps({k: s.get(k, v) for k, v in DEFAULTS.items()}, indent=2), encoding="utf-8")
    os.replace(tmp, path)
    return path


def output_dir(s: dict[str, Any]) -> Path:
    return Path(s.get("output_dir") or user_dir("data") / "resolve-media")


# ----------------------------------------------------------------------------------------------------- reporting
class Reporter:
    """Messages to the console always, and to a small window where fusion.UIManager exists (Studio)."""

    def __init__(self, title: str, fusion: Any = None, bmd: Any = None) -> None:
        self.title, self.lines, self.win, self.items, self.disp = title, [], None, {}, None
        self._last_print = 0.0
        ui = getattr(fusion, "UIManager", None) if fusion is not None else None
        if ui is not None and bmd is not None and callable(getattr(bmd, "UIDispatcher", None)):
            try:
                self.disp = bmd.UIDispatcher(ui)
                self.win = self.disp.AddWindow(
                    {"ID": "vdiffProgress", "WindowTitle": title, "Geometry": [200, 200, 560, 320]},
                    ui.VGroup([ui.Label({"ID": "status", "Text": "starting", "WordWrap": True}),
                               ui.TextEdit({"ID": "log", "ReadOnly": True}),
                               ui.Button({"ID": "close", "Text": "Close"})]))
                self.items = self.win.GetItems() or {}
                self.win.On.close.Clicked = lambda ev: self.disp.ExitLoop()
                self.win.On.vdiffProgress.Close = lambda ev: self.disp.ExitLoop()
                self.win.Show()
            except Exception:  # a UI that misbehaves must not stop the work; the console still gets everything
                self.win = None
        print(f"vdiff: {title}")

    @property
    def windowed(self) -> bool:
        return self.win is not None

    def line(self, msg: str) -> None:
        self.lines.append(msg)
        print(f"vdiff: {msg}")
        if "log" in self.items:
            self.items["log"].PlainText = "\n".join(self.lines)

    def status(self, msg: str) -> None:
        """Progress: always in the window, on the console at most every 2 s."""
        if "status" in self.items:
            self.items["status"].Text = msg
        now = time.monotonic()
        if now - self._last_print >= 2.0:
            print(f"vdiff: {msg}")
            self._last_print = now

    def finish(self, summary: list[str]) -> None:
        print("vdiff: ---- summary ----")
        for s in summary:
            print(f"vdiff: {s}")
        if self.win is not None:
            self.items["status"].Text = "finished"
            self.items["log"].PlainText = "\n".join(self.lines + ["", "Summary:"] + summary)
            self.disp.RunLoop()  # the work is done; wait for the editor to read and close
            self.win.Hide()


# ------------------------------------------------------------------------------------------------- the vdiff server
class ServerError(Exception):
    pass


class Server:
    """The local vdiff server through vdiff_client.py beside us: found via server.json + token, started on demand
    with the command install.json records (docs/server-api.md). Client errors become ServerError lines."""

    def __init__(self, here: Path = HERE) -> None:
        self.here = here
        self.client: Any = None
        self._mod: Any = None

    def module(self) -> Any:
        if self._mod is None:
            if str(self.here) not in sys.path:
                sys.path.insert(0, str(self.here))
            try:
                sys.modules.pop("vdiff_client", None)
                import vdiff_client  # type: ignore[import-not-found]
            except ImportError:
                raise ServerError(f"vdiff_client.py is missing from {self.here}; run `vdiff install-resolve` "
                                  "again") from None
            self._mod = vdiff_client
        return self._mod

    def _guard(self, fn: Callable[[], Any]) -> Any:
        mod = self.module()
        try:
            return fn()
        except mod.VdiffClientError as exc:
            raise ServerError(str(exc)) from None

    def install_info(self) -> dict | None:
        try:
            return json.loads((self.here / "install.json").read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None

    def health(self) -> dict | None:
        """The running server's /health, or None; never starts it."""
        try:
            mod = self.module()
            info = mod.read_server_info()
            if not info:
                return None
            return self._guard(lambda: mod.VdiffClient(info["url"], mod.read_token(), timeout=3.0).health())
        except (ServerError, KeyError, TypeError):
            return None

    def ensure(self, report: Callable[[str], None], wait: float = 60.0) -> bool:
        """Connect, starting the server from install.json when none answers; False (reported) if that fails."""
        if self.client is not None:
            return True
        try:
            if not self.health():
                report("starting the vdiff server (first run may take a few seconds)")
            mod = self.module()
            self.client = self._guard(lambda: mod.connect(start=True, timeout=wait,
                                                          install_json=self.here / "install.json"))
            return True
        except ServerError as exc:
            report(str(exc))
            return False

    def models(self) -> list[dict]:
        if self.client is None and not self.health():
            return []
        if self.client is None:
            mod = self.module()
            self.client = self._guard(lambda: mod.connect(start=False, timeout=5.0))
        m = self._guard(self.client.models)
        return m if isinstance(m, list) else []

    def submit(self, body: dict) -> dict:
        b = dict(body)
        return self._guard(lambda: self.client.submit(b.pop("input"), b.pop("output"), b.pop("model"), **b))

    def job(self, job_id: str) -> dict:
        return self._guard(lambda: self.client.status(job_id))


# --------------------------------------------------------------------------------------- Resolve's API, kept thin
def call(obj: Any, name: str, *args: Any) -> Any:
    """obj.name(*args) when this release has the method, else None (Resolve answers None for unknown names)."""
    fn = getattr(obj, name, None) if obj is not None else None
    return fn(*args) if callable(fn) else None


def has(obj: Any, name: str) -> bool:
    return obj is not None and callable(getattr(obj, name, None))


@dataclass
class Host:
    """The running Resolve: app objects, version, and the project."""

    resolve: Any
    fusion: Any
    bmd: Any
    version: tuple[int, int, int]
    studio: bool | None
    project: Any = None
    pool: Any = None

    @property
    def label(self) -> str:
        ed = "" if self.studio is None else " Studio" if self.studio else " (free)"
        return "Resolve " + ".".join(map(str, self.version)) + ed


def connect(scope: dict[str, Any]) -> Any:
    """The Resolve app object: the `resolve` global, else bmd.scriptapp, else the DaVinciResolveScript module."""
    r = scope.get("resolve")
    if r is None and scope.get("bmd") is not None:
        r = call(scope["bmd"], "scriptapp", "Resolve")
    if r is None:
        try:
            import DaVinciResolveScript as dvr  # type: ignore[import-not-found]
            r = dvr.scriptapp("Resolve")
        except Exception:
            r = None
    return r


def version_of(resolve: Any) -> tuple[int, int, int]:
    v = call(resolve, "GetVersion")
    try:
        if isinstance(v, dict):  # some releases answer a Lua-style table {1: major, 2: minor, ...}
            v = [v[k] for k in sorted(v)]
        return int(v[0]), int(v[1]), int(v[2])
    except (TypeError, ValueError, IndexError, KeyError):
        s = str(call(resolve, "GetVersionString") or "0.0.0").split(".")
        nums = [int("".join(ch for ch in p if ch.isdigit()) or 0) for p in s[:3]] + [0, 0, 0]
        return nums[0], nums[1], nums[2]


def open_host(scope: dict[str, Any], report: Callable[[str], None]) -> Host | None:
    """Connect and check this Resolve can run us; says why not (free 21.1+, no project) instead of failing."""
    r = connect(scope)
    if r is None:
        report("cannot reach Resolve's scripting API (no `resolve` global, bmd or DaVinciResolveScript); "
               "run this from Workspace > Scripts inside Resolve")
        return None
    version = version_of(r)
    studio = call(r, "IsStudio")
    studio = bool(studio) if studio is not None else None
    fusion = scope.get("fusion") or call(r, "Fusion")
    host = Host(r, fusion, scope.get("bmd"), version, studio)
    if studio is False and version >= (21, 1, 0):
        report(f"{host.label}: from 21.1 Resolve runs scripts only in the Studio version, so vdiff's Resolve "
               "scripts cannot work here. Use `vdiff enhance` on the files, or Resolve Studio.")
        return None
    pm = call(r, "GetProjectManager")
    host.project = call(pm, "GetCurrentProject")
    host.pool = call(host.project, "GetMediaPool")
    if host.project is None or host.pool is None:
        report(f"{host.label}: no project is open (or scripting is switched off in Preferences > System > General)")
        return None
    return host


def frame_rate(obj: Any) -> float:
    try:
        return float(call(obj, "GetSetting", "timelineFrameRate") or 0)
    except (TypeError, ValueError):
        return 0.0


def timecode(frame: int, fps: float) -> str:
    """Non-drop HH:MM:SS:FF of an absolute timeline frame, for messages."""
    base = max(1, round(fps or 25))
    sec, ff = divmod(int(frame), base)
    return f"{sec // 3600:02d}:{sec // 60 % 60:02d}:{sec % 60:02d}:{ff:02d}"


def item_key(item: Any) -> Any:
    """Identity of a timeline item across wrapper objects."""
    uid = call(item, "GetUniqueId")
    return uid if uid else (call(item, "GetStart"), call(item, "GetDuration"), call(item, "GetName"))


def video_tracks(tl: Any) -> list[tuple[int, list]]:
    n = int(call(tl, "GetTrackCount", "video") or 0)
    return [(i, list(call(tl, "GetItemListInTrack", "video", i) or [])) for i in range(1, n + 1)]


def track_of(tl: Any) -> dict[Any, int]:
    return {item_key(it): t for t, items in video_tracks(tl) for it in items}


# ------------------------------------------------------------------------------------------------ shots and plans
@dataclass
class Shot:
    """One timeline item, read once: where it sits and which source frames [src_start, src_end) it plays."""

    item: Any
    track: int
    name: str
    record: int
    duration: int
    path: str = ""
    fps: float = 0.0
    frames: int = 0
    src_start: int = 0
    src_end: int = 0
    notes: list[str] = field(default_factory=list)
    skip: str = ""
    at: str = ""

    @property
    def label(self) -> str:
        return f"V{self.track} {self.name} @ {self.at}"


_SEQUENCE = re.compile(r"\[(\d+)-(\d+)\]")  # Resolve names an image sequence clip shot_[1001-1100].dpx


def media_files(path: str) -> list[str]:
    """The files behind a clip's File Path: itself, or an image sequence's first and last frame."""
    m = _SEQUENCE.search(os.path.basename(path))
    if m is None:
        return [path]
    folder, name = os.path.split(path)
    digits = len(m.group(1))
    return [os.path.join(folder, name[:m.start()] + f"{int(n):0{digits}d}" + name[m.end():])
            for n in (m.group(1), m.group(2))]


def read_shot(item: Any, track: int, tl_fps: float) -> Shot:
    """Everything we need from a timeline item, or ``skip`` set to the one-line reason it cannot be enhanced."""
    shot = Shot(item, track, str(call(item, "GetName") or "clip"), int(call(item, "GetStart") or 0),
                int(call(item, "GetDuration") or 0))
    shot.at = timecode(shot.record, tl_fps)
    mpi = call(item, "GetMediaPoolItem")
    if mpi is None:
        shot.skip = "no media file (generator, title, Fusion or compound clip): left as it is"
        return shot
    props = call(mpi, "GetClipProperty") or {}
    kind = str(props.get("Type", ""))
    shot.path = str(props.get("File Path") or "")
    if not shot.path:
        shot.skip = f"{kind or 'this'} clip has no media file (compound, Fusion, timeline or generator): left as it is"
        return shot
    missing = [f for f in media_files(shot.path) if not os.path.isfile(f)]
    if missing:
        shot.skip = f"offline: {missing[0]} is missing; relink it and run again"
        return shot
    try:
        shot.fps = float(props.get("FPS") or 0)
        shot.frames = int(float(props.get("Frames") or 0))
    except (TypeError, ValueError):
        pass
    if shot.fps <= 0 or tl_fps <= 0:
        shot.skip = "frame rate unknown (clip or timeline); cannot line up the result"
        return shot
    ratio = shot.fps / tl_fps
    if has(item, "GetSourceStartFrame") and has(item, "GetSourceEndFrame"):
        shot.src_start, shot.src_end = int(call(item, "GetSourceStartFrame")), int(call(item, "GetSourceEndFrame"))
    elif abs(ratio - 1) > 1e-3:
        shot.skip = (f"mixed frame rate (clip {shot.fps:g} fps on a {tl_fps:g} fps timeline) needs Resolve 18.5+ "
                     "for exact source frames; skipped")
        return shot
    else:
        shot.src_start = int(call(item, "GetLeftOffset") or 0)
        shot.src_end = shot.src_start + shot.duration
    numbered = _SEQUENCE.search(os.path.basename(shot.path))
    if numbered and shot.frames and shot.src_end > shot.frames:  # source frames given as file numbers (1001...)
        first = int(numbered.group(1))
        if first <= shot.src_start and shot.src_end - first <= shot.frames:
            shot.src_start, shot.src_end = shot.src_start - first, shot.src_end - first
    used = shot.src_end - shot.src_start
    expected = shot.duration * ratio
    if used <= 0 or abs(used - expected) > max(1.0, ratio):
        pct = 100.0 * used / expected if expected else 0
        shot.skip = (f"speed change ({pct:.0f} %): vdiff keeps 100 % speed, so the result would not line up; "
                     "enhance it at 100 % and re-apply the speed change")
        return shot
    if abs(ratio - 1) > 1e-3:
        shot.notes.append(f"mixed frame rate: clip {shot.fps:g} fps on a {tl_fps:g} fps timeline; enhanced at "
                          f"{shot.fps:g} fps and conformed by Resolve like the original")
    retime = call(item, "GetProperty", "RetimeProcess")
    if retime not in (None, 0, "0", ""):
        shot.notes.append("has a retime process set; the enhanced clip is placed without it")
    return shot


@dataclass
class Plan:
    """The server job for a shot's source range plus handles, named by a cache key of source, range and settings."""

    shot: Shot
    start: int
    end: int
    output: str
    body: dict
    job_id: str = ""
    state: str = ""
    error: str = ""
    cached: bool = False

    @property
    def head(self) -> int:
        """Frames of handle before the used range, i.e. where the used range starts in the enhanced file."""
        return self.shot.src_start - self.start


def plan_for(shot: Shot, s: dict[str, Any]) -> Plan:
    handles = max(0, int(s.get("handles") or 0))
    start = max(0, shot.src_start - handles)
    end = shot.src_end + (min(handles, max(0, shot.frames - shot.src_end)) if shot.frames else 0)
    stats = [os.stat(f) for f in media_files(shot.path)]
    key_src = [os.path.abspath(shot.path), *[v for st in stats for v in (st.st_size, st.st_mtime_ns)], start, end,
               s.get("model"), s.get("strength"), s.get("codec")] + ([int(s["tta"])] if s.get("tta", 1) != 1 else [])
    key_src += [s["fields"]] if s.get("fields", "auto") != "auto" else []
    key = hashlib.sha1(json.dumps(key_src).encode()).hexdigest()[:10]
    stem = _SEQUENCE.sub("", Path(shot.path).stem).rstrip("._- ") or "sequence"
    out = output_dir(s) / f"{stem}.{s.get('model')}.{start}-{end}.{key}.mov"
    body = {"input": os.path.abspath(shot.path), "output": str(out), "model": s.get("model"),
            "strength": s.get("strength"), "start": start, "end": end, "codec": s.get("codec"),
            "tta": int(s.get("tta") or 1), "fields": s.get("fields") or "auto", "overwrite": False,
            "copy_streams": True}
    if len(media_files(shot.path)) > 1:  # an image sequence plays at the clip's rate (its files carry none)
        body["frame_rate"] = shot.fps
    return Plan(shot, start, end, str(out), body, cached=out.is_file())


def run_plans(plans: list[Plan], s: dict[str, Any], server: Server, rep: Reporter) -> None:
    """Submit what is not cached (one job per distinct output), poll until all finish; failures stay per clip."""
    todo: dict[str, Plan] = {}
    for p in plans:
        if not p.cached and p.output not in todo:
            todo[p.output] = p
    for p in plans:
        if p.cached:
            p.state = "done"
    if not todo:
        return
    if not server.ensure(rep.line, float(s.get("server_wait_seconds") or 60)):
        for p in plans:
            if not p.cached:
                p.state, p.error = "failed", "the vdiff server is not available"
        return
    output_dir(s).mkdir(parents=True, exist_ok=True)
    for p in todo.values():
        try:
            job = server.submit(p.body)
            p.job_id, p.state = str(job.get("id", "")), str(job.get("state", "queued"))
        except ServerError as exc:
            p.state, p.error = "failed", str(exc)
    poll = float(s.get("poll_seconds") or 0.5)
    while any(p.state not in FINISHED for p in todo.values()):
        time.sleep(poll)
        parts = []
        for p in todo.values():
            if p.state in FINISHED:
                continue
            try:
                job = server.job(p.job_id)
            except ServerError as exc:
                p.state, p.error = "failed", str(exc)
                continue
            p.state = str(job.get("state", p.state))
            p.error = str(job.get("error") or "")
            analysis = job.get("analysis") or {}
            if analysis:  # auto settings or a temporal model's cuts: the clip is read once before any frame is made
                parts.append(f"{p.shot.name} analysing {analysis.get('frames_done', 0)}/"
                             f"{analysis.get('frames_total', '?')}")
            else:
                parts.append(f"{p.shot.name} {job.get('frames_done', 0)}/{job.get('frames_total', '?')}")
        done = sum(p.state in FINISHED for p in todo.values())
        rep.status(f"enhancing {done}/{len(todo)} done" + (": " + ", ".join(parts[:3]) if parts else ""))
    for p in plans:
        if not p.cached and p.output in todo and todo[p.output] is not p:
            q = todo[p.output]
            p.state, p.error, p.job_id = q.state, q.error, q.job_id


# -------------------------------------------------------------------------------------------------- placing results
class Placer:
    """Imports results into the bin and appends them with clipInfo dicts; learns whether this release reads
    endFrame inclusive (README example) or exclusive (measured on 21.x) from the placed item's duration."""

    def __init__(self, host: Host, bin_name: str) -> None:
        self.host, self.bin_name = host, bin_name or "vdiff"
        self.exclusive: bool | None = None
        self._bin: Any = None

    def bin(self) -> Any:
        if self._bin is None:
            root = call(self.host.pool, "GetRootFolder")
            for f in call(root, "GetSubFolderList") or []:
                if call(f, "GetName") == self.bin_name:
                    self._bin = f
                    break
            else:
                self._bin = call(self.host.pool, "AddSubFolder", root, self.bin_name)
        return self._bin

    def media(self, path: str) -> Any:
        """The pool item for ``path`` in our bin, importing it once."""
        folder = self.bin()
        for c in call(folder, "GetClipList") or []:
            if os.path.abspath(str(call(c, "GetClipProperty", "File Path") or "")) == os.path.abspath(path):
                return c
        prev = call(self.host.pool, "GetCurrentFolder")
        if folder is not None:
            call(self.host.pool, "SetCurrentFolder", folder)
        try:
            items = call(self.host.pool, "ImportMedia", [path]) or []
        finally:
            if prev is not None:
                call(self.host.pool, "SetCurrentFolder", prev)
        return items[0] if items else None

    def append(self, tl: Any, mpi: Any, first: int, frames: int, track: int, record: int, want: int,
               media_type: int = 1) -> tuple[Any, str]:
        """Place ``frames`` source frames from ``first`` at ``record`` on ``track``; checks the placed length."""
        order = [self.exclusive] if self.exclusive is not None else [self.host.version >= (21, 0, 0)]
        order.append(not order[0])
        best: tuple[Any, str] = (None, "AppendToTimeline placed nothing (track locked or occupied?)")
        for exclusive in order:
            info = {"mediaPoolItem": mpi, "startFrame": first, "endFrame": first + frames - (0 if exclusive else 1),
                    "trackIndex": track, "recordFrame": record, "mediaType": media_type}
            placed = [p for p in (call(self.host.pool, "AppendToTimeline", [info]) or []) if p is not None]
            if not placed:
                continue
            item = placed[0]
            got = int(call(item, "GetDuration") or 0)
            if got == want:
                self.exclusive = exclusive
                return item, ""
            call(tl, "DeleteClips", placed, False)
            best = (None, f"placed length {got} frames instead of {want}")
        return best

    def new_track_above(self, tl: Any, track: int, rep: Reporter) -> int:
        """A new empty video track directly above ``track`` (Resolve 19+ inserts; older only appends on top)."""
        n = int(call(tl, "GetTrackCount", "video") or 0)
        if self.host.version >= (19, 0, 0):
            ok = call(tl, "AddTrack", "video", {"index": track + 1})
        else:
            ok = call(tl, "AddTrack", "video")
        if not ok or int(call(tl, "GetTrackCount", "video") or 0) != n + 1:
            return 0
        if self.host.version >= (19, 0, 0) or track == n:
            return track + 1
        rep.line(f"Resolve {'.'.join(map(str, self.host.version))} adds tracks only on top: results for V{track} "
                 f"are on V{n + 1}")
        return n + 1


def enhanced_item(placer: Placer, tl: Any, p: Plan, track: int) -> tuple[Any, str]:
    mpi = placer.media(p.output)
    if mpi is None:
        return None, f"Resolve could not import {p.output}"
    sh = p.shot
    return placer.append(tl, mpi, p.head, sh.src_end - sh.src_start, track, sh.record, sh.duration)


# ------------------------------------------------------------------------------------------------------- selection
def selected_shots(host: Host, tl: Any, s: dict[str, Any], rep: Reporter) -> list[tuple[Any, int]]:
    """The editor's video clips: Timeline.GetSelectedClips (21.0.4+), else clips marked with the chosen clip colour
    or flag, else clips inside the in/out marks, else the clip under the playhead; the rule used is reported."""
    tracks = track_of(tl)
    if has(tl, "GetSelectedClips"):
        chosen = [(it, tracks[item_key(it)]) for it in call(tl, "GetSelectedClips") or [] if item_key(it) in tracks]
        if chosen:
            rep.line(f"{len(chosen)} selected video clip(s)")
            return chosen
        rep.line("no video clips selected on the timeline; trying the fallbacks")
    else:
        rep.line(f"{host.label} has no Timeline.GetSelectedClips (needs 21.0.4+); using the fallbacks")
    color, flag = s.get("mark_color") or "", s.get("mark_flag") or ""
    all_items = [(it, t) for t, items in video_tracks(tl) for it in items]
    if color or flag:
        marked = [(it, t) for it, t in all_items
                  if (color and call(it, "GetClipColor") == color) or (flag and flag in (call(it, "GetFlagList") or []))]
        if marked:
            rule = " or ".join(x for x in (f"clip color {color}" if color else "", f"flag {flag}" if flag else "") if x)
            rep.line(f"using {len(marked)} clip(s) marked with {rule}")
            return marked
    marks = call(tl, "GetMarkInOut") or {}
    v = marks.get("video") or marks.get("all") if isinstance(marks, dict) else None
    if isinstance(v, dict) and "in" in v and "out" in v:
        base = int(call(tl, "GetStartFrame") or 0)
        lo, hi = base + int(v["in"]), base + int(v["out"])
        inside = [(it, t) for it, t in all_items
                  if int(call(it, "GetStart") or 0) <= hi and int(call(it, "GetEnd") or 0) > lo]
        if inside:
            rep.line(f"using {len(inside)} clip(s) within the timeline's in/out marks")
            return inside
    cur = call(tl, "GetCurrentVideoItem")
    if cur is not None and item_key(cur) in tracks:
        rep.line(f"using the clip under the playhead: {call(cur, 'GetName')}")
        return [(cur, tracks[item_key(cur)])]
    rep.line("nothing to enhance: select clips (21.0.4+), colour them "
             f"{color or '(set mark_color)'}, set in/out marks, or park the playhead on a clip")
    return []


# --------------------------------------------------------------------------------------------------------- commands
def _shots(items: Iterable[tuple[Any, int]], tl_fps: float, rep: Reporter, summary: list[str]) -> list[Shot]:
    shots = []
    for it, t in items:
        try:
            sh = read_shot(it, t, tl_fps)
        except Exception as exc:  # one odd clip never stops the rest
            summary.append(f"V{t} {call(it, 'GetName')}: could not be read ({exc})")
            continue
        for n in sh.notes:
            rep.line(f"{sh.label}: {n}")
        if sh.skip:
            summary.append(f"{sh.label}: {sh.skip}")
        else:
            shots.append(sh)
    return shots


def _plans(shots: list[Shot], s: dict[str, Any], summary: list[str]) -> list[Plan]:
    plans = []
    for sh in shots:
        try:
            plans.append(plan_for(sh, s))
        except OSError as exc:
            summary.append(f"{sh.label}: {exc}")
    return plans


def enhance_selected(host: Host, s: dict[str, Any], rep: Reporter, server: Server) -> list[str]:
    """Enhance the selected clips; results go on new tracks directly above, same record frame and length."""
    summary: list[str] = []
    tl = call(host.project, "GetCurrentTimeline")
    if tl is None:
        return ["no timeline is open"]
    shots = _shots(selected_shots(host, tl, s, rep), frame_rate(tl), rep, summary)
    plans = _plans(shots, s, summary)
    run_plans(plans, s, server, rep)
    placer = Placer(host, s.get("bin", "vdiff"))
    by_track: dict[int, list[Plan]] = {}
    for p in plans:
        if p.state == "done":
            by_track.setdefault(p.shot.track, []).append(p)
        else:
            summary.append(f"{p.shot.label}: {not_done(p)}")
    placed: list[tuple[Plan, Any, str]] = []
    for track in sorted(by_track, reverse=True):  # top first, so inserting a track never moves one still to do
        new = placer.new_track_above(tl, track, rep)
        if not new:
            summary.extend(f"{p.shot.label}: could not add a video track" for p in by_track[track])
            continue
        for p in by_track[track]:
            try:
                item, err = enhanced_item(placer, tl, p, new)
            except Exception as exc:
                item, err = None, str(exc)
            if item is None:
                summary.append(f"{p.shot.label}: enhanced to {p.output} but not placed: {err}")
                continue
            what = "reused" if p.cached else "enhanced"
            if s.get("placement") == "swap":
                off = call(p.shot.item, "SetClipEnabled", False)
                what += ", original disabled" if off else ", original could not be disabled"
            placed.append((p, item, what))
    tracks = track_of(tl)  # final numbers: later inserts move tracks placed earlier
    for p, item, what in sorted(placed, key=lambda x: (x[0].shot.track, x[0].shot.record)):
        sh = p.shot
        summary.append(f"V{tracks.get(item_key(sh.item), sh.track)} {sh.name} @ {sh.at}: {what}, "
                       f"on V{tracks.get(item_key(item), '?')}")
    return summary


def unique_timeline_name(project: Any, base: str) -> str:
    names = {call(call(project, "GetTimelineByIndex", i), "GetName")
             for i in range(1, int(call(project, "GetTimelineCount") or 0) + 1)}
    name, n = base, 2
    while name in names:
        name, n = f"{base[:-1]} {n})" if base.endswith(")") else f"{base} {n}", n + 1
    return name


def enhance_timeline(host: Host, tl: Any, s: dict[str, Any], rep: Reporter, server: Server,
                     summary: list[str]) -> Any:
    """Enhance every video clip of ``tl`` (or the chosen tracks) into a new timeline "<name> (vdiff)"; ``tl`` is
    left untouched. Returns the new timeline or None."""
    tname = str(call(tl, "GetName"))
    chosen = {int(t) for t in s.get("tracks") or []}
    items = [(it, t) for t, its in video_tracks(tl) for it in its if not chosen or t in chosen]
    shots = _shots(items, frame_rate(tl), rep, summary)
    plans = _plans(shots, s, summary)
    run_plans(plans, s, server, rep)
    for p in plans:
        if p.state != "done":
            summary.append(f"{tname} {p.shot.label}: {not_done(p)}; original kept")
    ready = {(p.shot.track, p.shot.record): p for p in plans if p.state == "done"}
    name = unique_timeline_name(host.project, f"{tname} (vdiff)")
    placer = Placer(host, s.get("bin", "vdiff"))
    new = call(tl, "DuplicateTimeline", name) if has(tl, "DuplicateTimeline") else None
    if new is not None:
        call(host.project, "SetCurrentTimeline", new)
        for t, its in video_tracks(new):
            for it in its:
                p = ready.get((t, int(call(it, "GetStart") or 0)))
                if p is None:
                    continue
                call(new, "DeleteClips", [it], False)
                item, err = enhanced_item(placer, new, p, t)
                summary.append(f"{tname} {p.shot.label}: " + (("reused" if p.cached else "enhanced")
                               if item is not None else f"not placed ({err})"))
        return new
    rep.line(f"{host.label}: no Timeline.DuplicateTimeline; building {name} clip by clip")
    new = call(host.pool, "CreateEmptyTimeline", name)
    if new is None:
        summary.append(f"{tname}: could not create timeline {name}")
        return None
    call(host.project, "SetCurrentTimeline", new)
    for kind in ("video", "audio"):
        while int(call(new, "GetTrackCount", kind) or 0) < int(call(tl, "GetTrackCount", kind) or 0):
            if not call(new, "AddTrack", kind):
                break
    tl_fps = frame_rate(tl)
    for t, its in video_tracks(tl):
        for it in its:
            p = ready.get((t, int(call(it, "GetStart") or 0)))
            if p is not None:
                item, err = enhanced_item(placer, new, p, t)
                summary.append(f"{tname} {p.shot.label}: " + (("reused" if p.cached else "enhanced")
                               if item is not None else f"not placed ({err})"))
                continue
            sh = read_shot(it, t, tl_fps)
            mpi = call(it, "GetMediaPoolItem")
            if not sh.path or mpi is None or sh.src_end <= sh.src_start:
                summary.append(f"{tname} {sh.label}: not copied to {name} (no media file)")
                continue
            _, err = placer.append(new, mpi, sh.src_start, sh.src_end - sh.src_start, t, sh.record, sh.duration)
            if err:
                summary.append(f"{tname} {sh.label}: original not copied ({err})")
    n_audio = int(call(tl, "GetTrackCount", "audio") or 0)
    for a in range(1, n_audio + 1):
        for it in call(tl, "GetItemListInTrack", "audio", a) or []:
            sh = read_shot(it, a, tl_fps)
            mpi = call(it, "GetMediaPoolItem")
            if mpi is None or sh.src_end <= sh.src_start:
                continue
            _, err = placer.append(new, mpi, sh.src_start, sh.src_end - sh.src_start, a, sh.record, sh.duration, 2)
            if err:
                summary.append(f"{tname} A{a} {sh.name} @ {sh.at}: audio not copied ({err})")
    return new


def cmd_enhance_timeline(host: Host, s: dict[str, Any], rep: Reporter, server: Server) -> list[str]:
    tl = call(host.project, "GetCurrentTimeline")
    if tl is None:
        return ["no timeline is open"]
    summary: list[str] = []
    new = enhance_timeline(host, tl, s, rep, server, summary)
    if new is not None:
        summary.append(f"made timeline {call(new, 'GetName')}; {call(tl, 'GetName')} is unchanged")
    return summary


def chosen_timelines(host: Host, s: dict[str, Any], rep: Reporter) -> list[Any]:
    """Batch targets: names from settings, else timelines selected in the media pool (19.0.2+), else the current."""
    project = host.project
    all_tl = [call(project, "GetTimelineByIndex", i) for i in range(1, int(call(project, "GetTimelineCount") or 0) + 1)]
    by_name = {call(t, "GetName"): t for t in all_tl if t is not None}
    names = [n for n in s.get("batch_timelines") or []]
    if names:
        missing = [n for n in names if n not in by_name]
        if missing:
            rep.line("timelines not found: " + ", ".join(missing))
        rep.line("timelines from settings: " + ", ".join(n for n in names if n in by_name))
        return [by_name[n] for n in names if n in by_name]
    if has(host.pool, "GetSelectedClips"):
        sel = [str(call(c, "GetName")) for c in call(host.pool, "GetSelectedClips") or []
               if call(c, "GetClipProperty", "Type") == "Timeline"]
        if sel:
            rep.line("timelines selected in the media pool: " + ", ".join(sel))
            return [by_name[n] for n in sel if n in by_name]
    cur = call(project, "GetCurrentTimeline")
    rep.line(f"no timelines chosen (settings batch_timelines or a media pool selection): using the current one, "
             f"{call(cur, 'GetName')}")
    return [cur] if cur is not None else []


def batch_render(host: Host, s: dict[str, Any], rep: Reporter, server: Server) -> list[str]:
    """Per chosen timeline: enhanced duplicate (cached results reused), a render job, then render and report."""
    summary: list[str] = []
    target = Path(s.get("render_dir") or output_dir(s) / "renders")
    target.mkdir(parents=True, exist_ok=True)
    jobs: list[tuple[str, str, str]] = []
    for tl in chosen_timelines(host, s, rep):
        tname = str(call(tl, "GetName"))
        try:
            new = enhance_timeline(host, tl, s, rep, server, summary)
        except Exception as exc:
            summary.append(f"{tname}: stopped ({exc})")
            continue
        if new is None:
            continue
        call(host.project, "SetCurrentTimeline", new)
        preset = s.get("render_preset") or ""
        if preset and not call(host.project, "LoadRenderPreset", preset):
            summary.append(f"{tname}: render preset '{preset}' not found; using the current render settings")
        name = str(call(new, "GetName"))
        if not call(host.project, "SetRenderSettings", {"SelectAllFrames": True, "TargetDir": str(target),
                                                        "CustomName": name}):
            summary.append(f"{tname}: Resolve refused the render settings (target {target})")
            continue
        jid = call(host.project, "AddRenderJob")
        if not jid:
            summary.append(f"{tname}: Resolve did not add a render job")
            continue
        jobs.append((tname, name, str(jid)))
    if not jobs:
        return summary + ["nothing to render"]
    if not call(host.project, "StartRendering", [j for _, _, j in jobs]):
        return summary + ["Resolve did not start rendering (another render running?)"]
    status: dict[str, dict] = {}
    poll = float(s.get("poll_seconds") or 0.5)
    while True:
        for _, _, jid in jobs:
            status[jid] = call(host.project, "GetRenderJobStatus", jid) or {}
        done = [j for j in status.values() if j.get("JobStatus") in RENDER_FINISHED]
        rep.status("rendering: " + ", ".join(f"{n} {status[j].get('CompletionPercentage', 0)}%" for _, n, j in jobs))
        if len(done) == len(jobs):
            break
        if not call(host.project, "IsRenderingInProgress") and not any(
                j.get("JobStatus") in ("Rendering", "Queued") for j in status.values()):
            time.sleep(poll)  # one last look: Resolve may flip the state a moment after it stops
            if all((call(host.project, "GetRenderJobStatus", j) or {}).get("JobStatus") in RENDER_FINISHED
                   for _, _, j in jobs):
                continue
            break
        time.sleep(poll)
    outputs = {str(j.get("JobId")): j for j in call(host.project, "GetRenderJobList") or [] if isinstance(j, dict)}
    for tname, name, jid in jobs:
        st = status.get(jid, {})
        where = outputs.get(jid, {})
        path = os.path.join(str(where.get("TargetDir") or target), str(where.get("OutputFilename") or name))
        state = st.get("JobStatus", "unknown")
        summary.append(f"{tname}: render {state}" + (f" -> {path}" if state == "Complete" else
                                                      f" ({st.get('Error', '')})" if st.get("Error") else ""))
    return summary


def not_done(p: Plan) -> str:
    """Why a shot was not enhanced, in a line: "auto" finding a clean clip is no failure."""
    if "needs no enhancing" in p.error:
        return "nothing to fix (" + p.error.split("(", 1)[-1].split("); no output")[0] + ")"
    return f"enhance failed: {p.error or p.state}"


def settings_command(host: Host | None, s: dict[str, Any], rep: Reporter, server: Server) -> list[str]:
    """Show (and in Studio edit) the settings; report the server's state."""
    h = server.health()
    state = (f"running ({h.get('version')}, {h.get('jobs_running', 0)} running, {h.get('jobs_queued', 0)} queued)"
             if h else "not running (started on demand)" if server.install_info() else
             "not running, and install.json is missing: run `vdiff install-resolve`")
    models = []
    if h:
        try:
            models = [str(m.get("name")) for m in server.models()]
        except ServerError:
            pass
    ui = getattr(host.fusion, "UIManager", None) if host else None
    if ui is not None and host is not None and host.bmd is not None:
        s = edit_settings(ui, host.bmd, s, models or [s["model"]])
    lines = [f"server: {state}", f"settings file: {settings_path()}"]
    lines += [f"{k}: {json.dumps(s.get(k))}" for k in DEFAULTS]
    if models:
        lines.append("models: " + ", ".join(models))
    if ui is None:
        lines.append("(no settings window in this Resolve; edit the file above, it is read on every run)")
    return lines


def edit_settings(ui: Any, bmd: Any, s: dict[str, Any], models: list[str]) -> dict[str, Any]:
    """A small settings dialog (Studio); saving writes the JSON file."""
    disp = bmd.UIDispatcher(ui)
    models = [m for m in dict.fromkeys([s["model"], *models, "auto"])]
    win = disp.AddWindow({"ID": "vdiffSettings", "WindowTitle": "vdiff settings", "Geometry": [200, 200, 480, 360]},
                         ui.VGroup([
                             ui.HGroup([ui.Label({"Text": "Model"}), ui.ComboBox({"ID": "model"})]),
                             ui.HGroup([ui.Label({"Text": "Strength (empty: default, auto: measured)"}),
                                        ui.LineEdit({"ID": "strength", "Text": "" if s["strength"] is None
                                                     else str(s["strength"])})]),
                             ui.HGroup([ui.Label({"Text": "Handles"}),
                                        ui.SpinBox({"ID": "handles", "Value": int(s["handles"]), "Maximum": 1000})]),
                             ui.HGroup([ui.Label({"Text": "Placement"}), ui.ComboBox({"ID": "placement"})]),
                             ui.HGroup([ui.Label({"Text": "Output folder"}),
                                        ui.LineEdit({"ID": "output_dir", "Text": s["output_dir"]})]),
                             ui.HGroup([ui.Label({"Text": "Codec"}), ui.ComboBox({"ID": "codec"})]),
                             ui.HGroup([ui.Label({"Text": "Render preset"}),
                                        ui.LineEdit({"ID": "render_preset", "Text": s["render_preset"]})]),
                             ui.HGroup([ui.Label({"Text": "Render folder"}),
                                        ui.LineEdit({"ID": "render_dir", "Text": s["render_dir"]})]),
                             ui.HGroup([ui.Button({"ID": "save", "Text": "Save"}),
                                        ui.Button({"ID": "cancel", "Text": "Cancel"})])]))
    it = win.GetItems()
    choices = {"model": models, "placement": ["above", "swap"],
               "codec": CODECS if s["codec"] in CODECS else [s["codec"]] + CODECS}
    for key, values in choices.items():
        it[key].AddItems(values)
        it[key].CurrentIndex = values.index(s[key])
    out = dict(s)

    def save(ev: Any) -> None:
        for key, values in choices.items():
            out[key] = values[int(it[key].CurrentIndex or 0)]
        txt = str(it["strength"].Text or "").strip()
        try:
            out["strength"] = "auto" if txt.lower() == "auto" else float(txt) if txt else None
        except ValueError:
            pass
        out["handles"] = int(it["handles"].Value or 0)
        for key in ("output_dir", "render_preset", "render_dir"):
            out[key] = str(it[key].Text or "").strip()
        save_settings(out)
        disp.ExitLoop()

    win.On.save.Clicked = save
    win.On.cancel.Clicked = lambda ev: disp.ExitLoop()
    win.On.vdiffSettings.Close = lambda ev: disp.ExitLoop()
    win.Show()
    disp.RunLoop()
    win.Hide()
    return load_settings()


COMMANDS = {
    "enhance_selected": ("Enhance Selected Clips", enhance_selected),
    "enhance_timeline": ("Enhance Timeline", cmd_enhance_timeline),
    "batch_render": ("Batch Render Timelines", batch_render),
    "settings": ("Settings", settings_command),
}


def main(command: str, scope: dict[str, Any]) -> list[str]:
    """Entry point of each menu script: connect, load settings, run ``command``, print/show the summary."""
    title, fn = COMMANDS[command]
    s = load_settings()
    r = connect(scope)
    fusion = scope.get("fusion") or call(r, "Fusion")
    rep = Reporter(f"vdiff {title}", fusion if command != "settings" else None, scope.get("bmd"))
    server = Server()
    host = open_host(scope, rep.line)
    if host is None and command != "settings":
        rep.finish(rep.lines[-1:])
        return rep.lines[-1:]
    try:
        summary = fn(host, s, rep, server)
    except Exception as exc:  # the last guard: a clear line instead of a traceback in Resolve's console
        summary = [f"stopped: {type(exc).__name__}: {exc}"]
    rep.finish(summary)
    return summary


if __name__ == "__main__":
    print("vdiff: vdiff_resolve.py is the shared module of the vdiff scripts; use the 'vdiff ...' menu entries.")
