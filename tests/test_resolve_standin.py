"""The Resolve stand-in follows Blackmagic's documented API (no server needed)."""

from __future__ import annotations

import time
from fractions import Fraction

import av
import pytest

from clips import make_clip
from resolve_standin import App, install_module


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    return make_clip(tmp_path_factory.mktemp("standin") / "a.mov", n=30, timecode="10:00:00:00")


def test_unknown_names_and_missing_methods_answer_none(clip):
    app = App("19.1", studio=False)
    assert app.resolve.NoSuchMethod is None
    tl = app.timeline("T")
    assert tl.GetSelectedClips is None and callable(app.project.pool.GetSelectedClips)
    assert app.fusion.UIManager is None  # free from 19.1
    assert App("19.0").project.pool.GetSelectedClips is None  # 19.0.2+
    assert callable(App("21.0.4").timeline("T").GetSelectedClips)
    assert App("18.1").timeline("T").GetItemListInTrack("video", 1) == []
    item = App("18.1").import_clip(clip)
    assert item.GetClipProperty("FPS") == 25.0 and item.GetClipProperty("Start TC") == "10:00:00:00"


def test_free_21_1_has_no_scripting_but_says_so():
    app = App("21.1", studio=False)
    assert app.resolve.IsStudio() is False and app.resolve.GetProjectManager is None
    assert app.resolve.GetVersion()[:3] == [21, 1, 0]
    assert App("21.0.4").resolve.IsStudio is None  # the method arrived with 21.1


@pytest.mark.parametrize("version,exclusive", [("20.x", False), ("21.0.4", True)])
def test_append_end_frame_convention(clip, version, exclusive):
    app = App(version)
    mpi = app.import_clip(clip)
    tl = app.timeline("T")
    items = app.project.pool.AppendToTimeline([{"mediaPoolItem": mpi, "startFrame": 2, "endFrame": 12,
                                                "trackIndex": 1, "recordFrame": tl.GetStartFrame() + 5}])
    assert len(items) == 1
    assert items[0].GetDuration() == (10 if exclusive else 11)
    assert items[0].GetStart() == tl.GetStartFrame() + 5 and items[0].GetSourceStartFrame() == 2
    # occupied place and bad track fail with an empty list, as documented
    assert app.project.pool.AppendToTimeline([{"mediaPoolItem": mpi, "startFrame": 0, "endFrame": 3,
                                               "trackIndex": 1, "recordFrame": tl.GetStartFrame() + 6}]) == []
    assert app.project.pool.AppendToTimeline([{"mediaPoolItem": mpi, "trackIndex": 7}]) == []


def test_add_track_index_only_from_19(clip):
    for version, moved_to in (("18.6", 2), ("19.0", 3)):
        app = App(version)
        tl = app.timeline("T", video_tracks=2)
        app.place(tl, app.import_clip(clip), 0, 10, 0, track=2)
        assert tl.AddTrack("video", {"index": 2})
        assert tl.GetTrackCount("video") == 3
        assert len(tl.GetItemListInTrack("video", moved_to)) == 1, version


def test_render_queue_writes_a_real_file(clip, tmp_path):
    app = App("21.0.4")
    mpi = app.import_clip(clip)
    tl = app.timeline("T")
    app.place(tl, mpi, 5, 15, 0)
    p = app.project
    assert p.AddRenderJob() == ""  # no target folder yet
    assert p.SetRenderSettings({"TargetDir": str(tmp_path), "CustomName": "out"})
    assert p.SetRenderSettings({"NoSuchKey": 1}) is False
    assert p.LoadRenderPreset("H.264 Master") and not p.LoadRenderPreset("nope")
    jid = p.AddRenderJob()
    assert jid and p.GetRenderJobStatus(jid)["JobStatus"] == "Ready"
    assert p.StartRendering([jid], isInteractiveMode=False)
    while p.IsRenderingInProgress():
        time.sleep(0.02)
    assert p.GetRenderJobStatus(jid) == {"JobStatus": "Complete", "CompletionPercentage": 100,
                                         "TimeTakenToRenderInMs": p.GetRenderJobStatus(jid)["TimeTakenToRenderInMs"]}
    with av.open(str(tmp_path / "out.mp4")) as c:
        assert sum(1 for _ in c.decode(video=0)) == 10
        assert Fraction(c.streams.video[0].average_rate) == 25


def test_fake_module_fallback(clip):
    app = App("19.1")
    install_module(app)
    import DaVinciResolveScript

    assert DaVinciResolveScript.scriptapp("Resolve") is app.resolve
