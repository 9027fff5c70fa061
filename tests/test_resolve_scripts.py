"""The vdiff menu scripts run the way Resolve runs them (globals `resolve`/`bmd`/`fusion`, or the
DaVinciResolveScript fallback) against the Resolve stand-in, a real `vdiff serve` subprocess and real clips."""

from __future__ import annotations

import json
import re
import os
import runpy
import socket
import subprocess
import sys
import time
from importlib.util import find_spec
from pathlib import Path

import av
import numpy as np
import pytest

from clips import make_clip
from onnx_kit import standard_set
from resolve_standin import App, MediaPoolItem, install_module

pytestmark = pytest.mark.skipif(find_spec("vdiff_ofx.server.command") is None, reason="vdiff server not built yet")

ROOT = Path(__file__).resolve().parent.parent
SCRIPTS = ROOT / "resolve_scripts"
if not (SCRIPTS / "vdiff_client.py").is_file():
    pytestmark = pytest.mark.skip(reason="resolve_scripts/vdiff_client.py not there yet")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    """User folders in tmp, throwaway models, the scripts installed into a tmp HOME, and a real server."""
    base = tmp_path_factory.mktemp("resolve")
    manifest = standard_set(base / "models")
    values = {"HOME": str(base / "home"), "VDIFF_CONFIG_DIR": str(base / "config"),
              "VDIFF_DATA_DIR": str(base / "data"), "VDIFF_LOG_DIR": str(base / "log"),
              "VDIFF_MANIFEST": str(manifest)}
    with pytest.MonkeyPatch.context() as mp:
        for k, v in values.items():
            mp.setenv(k, v)
        from vdiff_ofx import resolve_install

        dest = resolve_install.target_dir()
        resolve_install.install(dest)
        proc = subprocess.Popen([sys.executable, "-m", "vdiff_ofx.cli", "serve", "--port", str(_free_port()),
                                 "--threads", "1"], cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        sys.path.insert(0, str(dest))
        import vdiff_client

        try:
            client = vdiff_client.connect(start=False, timeout=30)
        except vdiff_client.VdiffClientError:
            client = None
            deadline = time.monotonic() + 30
            while client is None and time.monotonic() < deadline and proc.poll() is None:
                time.sleep(0.2)
                try:
                    client = vdiff_client.connect(start=False, timeout=1)
                except vdiff_client.VdiffClientError:
                    pass
        assert client is not None, proc.stderr.read().decode() if proc.poll() is not None else "server not up"
        clips = base / "clips"
        clips.mkdir()
        media = {"a": make_clip(clips / "a.mov", n=40, timecode="10:00:00:00"),
                 "b": make_clip(clips / "b.mov", n=30),
                 "c50": make_clip(clips / "c50.mov", n=40, rate=50)}
        yield {"base": base, "dest": dest, "client": client, "media": media}
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
        sys.path.remove(str(dest))


def settings(env, tmp_path, **over) -> dict:
    s = {"model": "cnn", "output_dir": str(tmp_path / "media"), "poll_seconds": 0.1, **over}
    path = Path(os.environ["VDIFF_CONFIG_DIR"]) / "resolve.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(s))
    return s


def run_script(env, app: App, name: str, via: str = "globals") -> None:
    """Run an installed menu script as Resolve does: with its globals, or with none (module fallback)."""
    path = env["dest"] / f"vdiff {name}.py"
    if via == "globals":
        runpy.run_path(str(path), init_globals=app.scope(), run_name="__main__")
    else:
        install_module(app)
        runpy.run_path(str(path), run_name="__main__")


def frames_of(path: str) -> int:
    with av.open(path) as c:
        return sum(1 for _ in c.decode(video=0))


def vdiff_items(tl, track: int):
    return [(it.GetStart() - tl.GetStartFrame(), it.GetDuration(), it.GetSourceStartFrame(),
              it.GetMediaPoolItem().GetClipProperty("File Path")) for it in tl.GetItemListInTrack("video", track)
            if it.GetMediaPoolItem() is not None]


def test_enhance_selected_on_21_0_4_places_above_with_handles(env, tmp_path, capsys):
    settings(env, tmp_path)
    app = App("21.0.4")
    a, b = app.import_clip(env["media"]["a"]), app.import_clip(env["media"]["b"])
    gone = tmp_path / "gone.mov"
    gone.write_bytes(Path(env["media"]["b"]).read_bytes())
    offline = app.import_clip(gone)
    gone.unlink()
    tl = app.timeline("Edit", video_tracks=2)
    sel = [app.place(tl, a, 5, 25, 0), app.place(tl, b, 0, 20, 20), app.place(tl, a, 10, 20, 50, track=2),
           app.place(tl, None, 0, 10, 70, kind="generator", name="Solid Color"),
           app.place(tl, offline, 0, 5, 80)]
    tl.selected = sel
    before = [(it.GetStart(), it.GetDuration(), it.GetSourceStartFrame()) for it in sel]
    run_script(env, app, "Enhance Selected Clips")
    out = capsys.readouterr().out
    assert tl.GetTrackCount("video") == 4  # a new track directly above V1 and above V2
    v2, v4 = vdiff_items(tl, 2), vdiff_items(tl, 4)
    assert [(r, d, s) for r, d, s, _ in v2] == [(0, 20, 5), (20, 20, 0)]  # head = handles the source had
    assert [(r, d, s) for r, d, s, _ in v4] == [(50, 10, 10)]
    files = [p for *_, p in v2 + v4]
    assert all(str(tmp_path / "media") in p for p in files)
    assert [frames_of(p) for p in files] == [37, 30, 32]  # used range + up to 12 frames each side
    with av.open(files[0]) as c:
        assert c.streams.video[0].metadata.get("timecode") == "10:00:00:00"
    bins = [f for f in app.project.pool.GetRootFolder().GetSubFolderList() if f.GetName() == "vdiff"]
    assert len(bins) == 1 and len(bins[0].GetClipList()) == 3
    # originals untouched: same items on V1 and V3, same media
    assert [(it.GetStart(), it.GetDuration(), it.GetSourceStartFrame()) for it in sel] == before
    assert len(tl.GetItemListInTrack("video", 1)) == 4 and len(tl.GetItemListInTrack("video", 3)) == 1
    assert a.GetClipProperty("File Path") == str(env["media"]["a"]) and all(it.GetClipEnabled() for it in sel)
    assert "V3 a.mov @ 01:00:02:00: enhanced, on V4" in out  # final track numbers, after both inserts
    assert "Solid Color @ 01:00:02:20: no media file" in out and "offline" in out and "gone.mov is missing" in out
    win = app.bmd.dispatchers[0].windows[0]  # Studio: a progress window
    assert "Summary:" in win.GetItems()["log"].PlainText


def test_fallback_clip_color_on_19_1_free_via_module(env, tmp_path, capsys):
    settings(env, tmp_path)
    app = App("19.1", studio=False)
    a = app.import_clip(env["media"]["a"])
    tl = app.timeline("Edit")
    x, y, z = app.place(tl, a, 5, 25, 0), app.place(tl, a, 25, 35, 20), app.place(tl, a, 0, 5, 30)
    x.SetClipColor("Orange")
    z.SetClipColor("Orange")
    run_script(env, app, "Enhance Selected Clips", via="module")
    out = capsys.readouterr().out
    assert "no Timeline.GetSelectedClips" in out and "marked with clip color Orange" in out
    assert [(r, d, s) for r, d, s, _ in vdiff_items(tl, 2)] == [(0, 20, 5), (30, 5, 0)]  # inclusive endFrame
    assert app.bmd.dispatchers == []  # no UIManager in the free version: console only


def test_fallbacks_in_out_marks_on_18_6_and_playhead_on_19_0(env, tmp_path, capsys):
    settings(env, tmp_path, mark_color="")
    app = App("18.6")
    a = app.import_clip(env["media"]["a"])
    tl = app.timeline("Edit", video_tracks=2)
    app.place(tl, a, 5, 25, 0)
    app.place(tl, a, 25, 35, 30)
    tl.marks = {"video": {"in": 35, "out": 45}}  # marks API is 19.0+: ignored on 18.6
    tl.playhead = tl.GetStartFrame() + 32
    run_script(env, app, "Enhance Selected Clips")
    out = capsys.readouterr().out
    assert "under the playhead" in out and "adds tracks only on top" in out
    assert [(r, d) for r, d, *_ in vdiff_items(tl, 3)] == [(30, 10)]

    app = App("19.0")
    a = app.import_clip(env["media"]["a"])
    tl = app.timeline("Edit")
    app.place(tl, a, 5, 25, 0)
    app.place(tl, a, 25, 35, 30)
    tl.SetMarkInOut(35, 45)
    run_script(env, app, "Enhance Selected Clips")
    assert "within the timeline's in/out marks" in capsys.readouterr().out
    assert [(r, d) for r, d, *_ in vdiff_items(tl, 2)] == [(30, 10)]


def test_speed_mixed_rate_and_retime_are_reported_per_clip(env, tmp_path, capsys):
    settings(env, tmp_path)
    app = App("20.x")
    a, c = app.import_clip(env["media"]["a"]), app.import_clip(env["media"]["c50"])
    tl = app.timeline("Edit")
    comp = MediaPoolItem(app.profile, "Compound Clip 1", "compound")
    for it in (app.place(tl, a, 0, 20, 0, speed=2.0), app.place(tl, c, 10, 30, 20),
               app.place(tl, a, 5, 15, 40), app.place(tl, comp, 0, 5, 60, kind="compound")):
        it.SetClipColor("Orange")
    tl.GetItemListInTrack("video", 1)[2].SetProperty("RetimeProcess", 3)
    run_script(env, app, "Enhance Selected Clips")
    out = capsys.readouterr().out
    assert "speed change (200 %)" in out
    assert "mixed frame rate: clip 50 fps on a 25 fps timeline" in out and "retime process" in out
    placed = vdiff_items(tl, 2)
    assert [(r, d, s) for r, d, s, _ in placed] == [(20, 10, 10), (40, 10, 5)]
    assert frames_of(placed[0][3]) == 40  # 50 fps source: 10..30 plus handles 10 + 10
    with av.open(placed[0][3]) as f:
        assert f.streams.video[0].average_rate == 50  # source frame rate kept
    assert "Compound clip has no media file" in out


def test_swap_placement_disables_the_original_only(env, tmp_path):
    settings(env, tmp_path, placement="swap")
    app = App("21.0.4")
    a = app.import_clip(env["media"]["a"])
    tl = app.timeline("Edit")
    it = app.place(tl, a, 5, 25, 0)
    tl.selected = [it]
    run_script(env, app, "Enhance Selected Clips")
    assert it.GetClipEnabled() is False and it.GetMediaPoolItem() is a
    assert [(r, d) for r, d, *_ in vdiff_items(tl, 2)] == [(0, 20)]


@pytest.mark.parametrize("missing", [frozenset(), frozenset({"Timeline.DuplicateTimeline"})])
def test_enhance_timeline_makes_a_vdiff_duplicate(env, tmp_path, capsys, missing):
    settings(env, tmp_path)
    app = App("20.x", missing=missing)
    a, b = app.import_clip(env["media"]["a"]), app.import_clip(env["media"]["b"])
    tl = app.timeline("Cut")
    app.place(tl, a, 5, 25, 0)
    app.place(tl, b, 0, 20, 20)
    app.place(tl, None, 0, 10, 40, kind="title", name="Text+")
    before = vdiff_items(tl, 1)[:2]
    run_script(env, app, "Enhance Timeline")
    out = capsys.readouterr().out
    new = app.project.GetCurrentTimeline()
    assert new.GetName() == "Cut (vdiff)" and app.project.GetTimelineCount() == 2
    assert vdiff_items(tl, 1)[:2] == before and len(tl.GetItemListInTrack("video", 1)) == 3
    items = new.GetItemListInTrack("video", 1)
    got = [(it.GetStart() - new.GetStartFrame(), it.GetDuration()) for it in items if it.GetMediaPoolItem()]
    assert got == [(0, 20), (20, 20)]
    assert all(str(tmp_path / "media") in it.GetMediaPoolItem().GetClipProperty("File Path")
               for it in items if it.GetMediaPoolItem())
    if missing:
        assert "no Timeline.DuplicateTimeline" in out and "Text+ @ 01:00:01:15: not copied" in out
    else:
        assert any(it.GetMediaPoolItem() is None for it in items)  # the title came along with the duplicate


def test_batch_render_reuses_results_and_renders(env, tmp_path, capsys):
    renders = tmp_path / "renders"
    settings(env, tmp_path, batch_timelines=["T1", "T2"], render_preset="H.264 Master", render_dir=str(renders))
    client = env["client"]
    app = App("21.0.4")
    a, b = app.import_clip(env["media"]["a"]), app.import_clip(env["media"]["b"])
    t1 = app.timeline("T1")
    app.place(t1, a, 5, 25, 0)
    t2 = app.timeline("T2")
    app.place(t2, b, 0, 20, 0)
    app.place(t2, a, 5, 25, 20)  # same source, range and settings as T1: one job serves both
    app.timeline("Other")
    jobs_before = len(client.jobs())
    run_script(env, app, "Batch Render Timelines")
    out = capsys.readouterr().out
    assert len(client.jobs()) - jobs_before == 2
    assert "T1: render Complete" in out and "T2: render Complete" in out
    assert frames_of(str(renders / "T1 (vdiff).mp4")) == 20 and frames_of(str(renders / "T2 (vdiff).mp4")) == 40
    enhanced = next(it for it in app.project.timelines if it.GetName() == "T1 (vdiff)").GetItemListInTrack(
        "video", 1)[0].GetMediaPoolItem().GetClipProperty("File Path")
    with av.open(enhanced) as c:
        want = [f.to_ndarray(format="rgb24") for f in c.decode(video=0)][5]  # head: 5 frames of handle
    with av.open(str(renders / "T1 (vdiff).mp4")) as c:
        got = next(iter(c.decode(video=0))).to_ndarray(format="rgb24")
    assert np.abs(got.astype(int) - want.astype(int)).mean() < 4
    run_script(env, app, "Batch Render Timelines")  # again: everything cached, no new server jobs
    assert len(client.jobs()) - jobs_before == 2
    assert "T1 (vdiff 2)" in [t.GetName() for t in app.project.timelines]


def test_free_21_1_says_studio_only(env, tmp_path, capsys):
    settings(env, tmp_path)
    app = App("21.1", studio=False)
    run_script(env, app, "Enhance Selected Clips")
    assert "only in the Studio version" in capsys.readouterr().out


def test_auto_on_a_clean_clip_says_nothing_to_fix_and_places_nothing(env, tmp_path, capsys):
    settings(env, tmp_path, model="auto", strength="auto")
    app = App("21.0.4")
    a = app.import_clip(env["media"]["a"])
    tl = app.timeline("Edit")
    tl.selected = [app.place(tl, a, 5, 25, 0)]
    run_script(env, app, "Enhance Selected Clips")
    out = capsys.readouterr().out
    assert "nothing to fix (" in out and "enhance failed" not in out and tl.GetTrackCount("video") == 1


def test_failed_jobs_and_missing_server_are_per_clip(env, tmp_path, capsys, monkeypatch):
    settings(env, tmp_path, model="no-such-model")
    app = App("21.0.4")
    a = app.import_clip(env["media"]["a"])
    tl = app.timeline("Edit")
    tl.selected = [app.place(tl, a, 5, 25, 0), app.place(tl, a, 25, 30, 20)]
    run_script(env, app, "Enhance Selected Clips")
    out = capsys.readouterr().out
    assert out.count("enhance failed") == 2 and tl.GetTrackCount("video") == 1
    # no server and a start command that fails: a clear line, nothing placed, no traceback
    monkeypatch.setenv("VDIFF_DATA_DIR", str(tmp_path / "nodata"))
    settings(env, tmp_path, server_wait_seconds=2)
    inst = env["dest"] / "install.json"
    saved = inst.read_text()
    inst.write_text(json.dumps({"python": sys.executable, "serve": [sys.executable, "-c", "raise SystemExit(3)"]}))
    try:
        run_script(env, app, "Enhance Selected Clips")
    finally:
        inst.write_text(saved)
    out = capsys.readouterr().out
    assert "did not become healthy" in out and out.count("enhance failed") == 2 and "Traceback" not in out


def test_server_started_on_demand(env, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("VDIFF_DATA_DIR", str(tmp_path / "data2"))
    monkeypatch.setenv("VDIFF_PORT", str(_free_port()))
    settings(env, tmp_path)
    app = App("21.0.4")
    a = app.import_clip(env["media"]["a"])
    tl = app.timeline("Edit")
    tl.selected = [app.place(tl, a, 0, 8, 0)]
    try:
        run_script(env, app, "Enhance Selected Clips")
        assert "starting the vdiff server" in capsys.readouterr().out
        assert [(r, d) for r, d, *_ in vdiff_items(tl, 2)] == [(0, 8)]
    finally:
        import vdiff_client

        try:
            vdiff_client.connect(start=False, timeout=2).shutdown()
        except vdiff_client.VdiffClientError:
            pass


def test_settings_console_and_window(env, tmp_path, capsys):
    settings(env, tmp_path)
    run_script(env, App("19.1", studio=False), "Settings")
    out = capsys.readouterr().out
    assert "server: running" in out and "resolve.json" in out and "edit the file above" in out

    def user(win):
        it = win.GetItems()
        it["handles"].Value = 4
        it["placement"].CurrentIndex = 1
        it["strength"].Text = "20"
        win.fire("save")

    run_script(env, App("21.0.4", ui_driver=user), "Settings")
    saved = json.loads((Path(os.environ["VDIFF_CONFIG_DIR"]) / "resolve.json").read_text())
    assert (saved["handles"], saved["placement"], saved["strength"], saved["model"]) == (4, "swap", 20.0, "cnn")

    def automatic(win):  # the analysis picks model and strength: both offered
        it = win.GetItems()
        it["model"].CurrentIndex = it["model"].items.index("auto")
        it["strength"].Text = "Auto"
        win.fire("save")

    run_script(env, App("21.0.4", ui_driver=automatic), "Settings")
    saved = json.loads((Path(os.environ["VDIFF_CONFIG_DIR"]) / "resolve.json").read_text())
    assert (saved["model"], saved["strength"]) == ("auto", "auto")


def test_enhance_timeline_chosen_tracks_only(env, tmp_path):
    settings(env, tmp_path, tracks=[2])
    app = App("21.0.4")
    a, b = app.import_clip(env["media"]["a"]), app.import_clip(env["media"]["b"])
    tl = app.timeline("Two", video_tracks=2)
    app.place(tl, a, 5, 25, 0, track=1)
    app.place(tl, b, 0, 20, 0, track=2)
    run_script(env, app, "Enhance Timeline")
    new = app.project.GetCurrentTimeline()
    assert new.GetItemListInTrack("video", 1)[0].GetMediaPoolItem() is a
    v2 = vdiff_items(new, 2)
    assert [(r, d, s) for r, d, s, _ in v2] == [(0, 20, 0)] and str(tmp_path / "media") in v2[0][3]


def test_auto_strength_shows_the_analysis_before_the_frames(env, tmp_path, capsys):
    """An auto job reads its clip once before its first frame: the status line says so with the analysis' own
    count, rather than sitting at 0 frames."""
    settings(env, tmp_path, model="sigma", strength="auto")
    app = App("21.0.4")
    long_clip = app.import_clip(str(make_clip(tmp_path / "long.mov", n=400, width=192, height=128)))
    tl = app.timeline("Edit")
    tl.selected = [app.place(tl, long_clip, 0, 400, 0)]
    run_script(env, app, "Enhance Selected Clips")
    out = capsys.readouterr().out
    shown = re.search(r"long\S* analysing (\d+)/(\d+)", out)
    assert shown and 0 <= int(shown.group(1)) < int(shown.group(2)) <= 400, out
    assert "enhance failed" not in out and tl.GetTrackCount("video") == 2


def test_image_sequence_clip_is_enhanced_and_placed(env, tmp_path, capsys):
    """A DPX sequence imported as Resolve does (one clip, file_[001-100]-style File Path, at the project's rate):
    the job reads the files from that name at the clip's rate, and the result lines up above it."""
    from test_sequence import pictures, write_dpx

    settings(env, tmp_path)
    app = App("21.0.4")
    pattern = write_dpx(tmp_path / "scan", 1001, pictures(16, 96, 64))
    (seq,) = app.project.pool.ImportMedia([{"FilePath": pattern, "StartIndex": 1001, "EndIndex": 1016}])
    assert seq.GetName() == "shot.[1001-1016].dpx" and seq.GetClipProperty("File Path").endswith("[1001-1016].dpx")
    tl = app.timeline("Edit")
    tl.selected = [app.place(tl, seq, 3, 11, 0)]
    run_script(env, app, "Enhance Selected Clips")
    out = capsys.readouterr().out
    assert "enhanced, on V2" in out, out
    ((rec, dur, src, path),) = vdiff_items(tl, 2)
    assert (rec, dur, src) == (0, 8, 3) and "[" not in Path(path).name  # handles: the 3 frames before it
    with av.open(path) as c:
        v = c.streams.video[0]
        assert v.frames == 8 + 3 + 5 and v.average_rate == 25  # used range + handles either side; the clip's rate
    # missing files are an offline clip, said once, not a failed job
    Path(pattern % 1016).unlink()
    tl.selected = [app.place(tl, seq, 0, 4, 40)]
    run_script(env, app, "Enhance Selected Clips")
    assert "offline" in capsys.readouterr().out


def test_sequence_source_frames_given_as_file_numbers_still_line_up(env, tmp_path, capsys):
    """Whether a Resolve release reports a sequence clip's source frames from 0 or by file number (1004 for the
    fourth file of shot.[1001-1016].dpx), the job reads the same files."""
    from test_sequence import pictures, write_dpx

    settings(env, tmp_path, handles=0)
    app = App("21.0.4")
    pattern = write_dpx(tmp_path / "scan", 1001, pictures(16, 96, 64))
    (seq,) = app.project.pool.ImportMedia([{"FilePath": pattern, "StartIndex": 1001, "EndIndex": 1016}])
    tl = app.timeline("Edit")
    tl.selected = [app.place(tl, seq, 1004, 1012, 0)]  # as file numbers
    run_script(env, app, "Enhance Selected Clips")
    assert "enhanced, on V2" in capsys.readouterr().out
    ((_, dur, _, path),) = vdiff_items(tl, 2)
    assert dur == 8 and ".3-11." in Path(path).name  # the job's range: files 1004-1011
