"""The job API over real sockets against a real `vdiff serve` subprocess: token, health, bad input (clear 4xx,
server keeps serving), a job's life, cancel, a failing job, --status/--stop, stale server.json, the client."""

from __future__ import annotations

import json
import os
import stat
import sys
import time

import numpy as np
import pytest

from clips import make_clip
from onnx_kit import standard_set
from test_server_kit import ROOT, Server, serve_command, server_env, use_env, vdiff_client
from vdiff_ofx.io.decode import decode_frames
from vdiff_ofx.io.probe import probe


@pytest.fixture(scope="module")
def kit(tmp_path_factory):
    return standard_set(tmp_path_factory.mktemp("kit"))


@pytest.fixture(scope="module")
def server(tmp_path_factory, kit):
    srv = Server(tmp_path_factory.mktemp("srv"), kit)
    try:
        yield srv.start()
    finally:
        srv.close()


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    return make_clip(tmp_path_factory.mktemp("clips") / "src.mov", n=8, width=96, height=64, audio=True,
                     timecode="01:00:00:00")


@pytest.fixture(autouse=True)
def client_env(server, monkeypatch):
    use_env(monkeypatch, server.env)


def test_token_is_private_and_required(server):
    path = server.base / "config" / "token"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600 and len(server.token) == 43
    for token in (None, "wrong", server.token[:-1] + ("x" if server.token[-1] != "x" else "y")):
        status, body = server.raw("GET", "/health", token=token)
        assert status == 401 and "token" in body["detail"]
    assert server.raw("GET", "/openapi.json", token=None)[0] == 401
    status, api = server.raw("GET", "/openapi.json")
    assert status == 200 and "/jobs" in api["paths"] and "/jobs/{job_id}/cancel" in api["paths"]
    status, health = server.raw("GET", "/health")
    assert status == 200 and health["status"] == "ok" and health["version"] == "0.1.0"
    assert "CPUExecutionProvider" in health["providers"] and health["pid"] == server.proc.pid


def test_models_lists_the_kit(server):
    models = {m["name"]: m for m in server.client().models()}
    assert {"cnn", "sigma", "up2", "temporal3", "mult4"} <= set(models)
    assert models["sigma"]["strength"] == {"min": 0, "max": 50, "default": 15, "unit": "sigma on 0-255"}
    assert models["temporal3"]["temporal_window"] == 3 and models["up2"]["scale"] == 2


def test_bad_requests_get_one_clear_line(server, clip, tmp_path):
    (tmp_path / "exists.mov").write_bytes(b"x")
    (tmp_path / "notvideo.mov").write_text("hello")
    good = {"input": str(clip), "output": str(tmp_path / "o.mov"), "model": "cnn"}
    cases = [
        (b"{not json", 400, "malformed JSON"),
        (b"[1, 2]", 400, "JSON object"),
        ({**good, "colour": "red"}, 422, "unknown field 'colour'"),
        ({**good, "strength": "lots"}, 422, "strength"),
        ({**good, "overwrite": {"a": 1}}, 422, "overwrite"),
        ({**good, "tta": 3}, 422, "tta"),
        ({**good, "fields": "interlaced"}, 400, "fields 'interlaced' must be one of auto, separate, woven"),
        ({**good, "fields": 2}, 422, "fields"),
        ({"output": good["output"]}, 422, "missing field 'input'"),
        ({**good, "input": "clip.mov"}, 400, "absolute"),
        ({**good, "input": str(tmp_path / "missing.mov")}, 400, "not found"),
        ({**good, "input": str(tmp_path)}, 400, "not a file"),
        ({**good, "input": str(tmp_path / "notvideo.mov")}, 400, "not a readable video"),
        ({**good, "output": "o.mov"}, 400, "absolute"),
        ({**good, "output": str(clip)}, 400, "source"),
        ({**good, "output": str(tmp_path / "exists.mov")}, 400, "already exists"),
        ({**good, "output": str(tmp_path / "nodir" / "o.mov")}, 400, "does not exist"),
        ({**good, "output": str(tmp_path / "o.avi")}, 400, "unsupported output type"),
        ({**good, "model": "nope"}, 400, "unknown model 'nope'"),
        ({**good, "strength": 10}, 400, "no strength control"),
        ({**good, "model": "sigma", "strength": 99}, 400, "outside 0"),
        ({**good, "start": 50}, 400, "past the clip"),
        ({**good, "output": str(tmp_path / "o.mp4"), "codec": "prores_hq"}, 400, "cannot be written to .mp4"),
        ({**good, "ops": {"crop": "500:500"}}, 400, "does not fit"),
        ({**good, "ops": {"spin": 1}}, 422, "unknown field 'ops.spin'"),
    ]
    for body, status, words in cases:
        raw = body if isinstance(body, bytes) else json.dumps(body).encode()
        got, answer = server.raw("POST", "/jobs", raw)
        assert (got, words in str(answer.get("detail"))) == (status, True), (words, got, answer)
        assert "\n" not in answer["detail"]
    assert server.raw("GET", "/jobs/j_unknown")[0] == 404
    assert server.raw("POST", "/jobs/j_unknown/cancel")[0] == 404
    assert server.raw("GET", "/jobs/j_unknown/result")[0] == 404
    status, body = server.raw("GET", "/jobs?state=sleeping")
    assert status == 400 and "unknown state" in body["detail"]
    assert server.raw("GET", "/health")[0] == 200  # still serving
    assert not list(tmp_path.glob("*vdiff*"))


def test_job_lifecycle(server, clip, tmp_path):
    client = server.client()
    out = tmp_path / "out.mov"
    job = client.submit(str(clip), str(out), model="sigma", strength=10, start=2, end=7)
    assert job["state"] in ("queued", "running") and job["frames_total"] == 5 and job["id"].startswith("j_")
    assert job["options"]["strength"] == 10
    seen = []
    result = client.wait(job["id"], timeout=30, poll=0.05, on_progress=seen.append)
    assert result["output"] == str(out) and result["frames"] == 5 and (result["width"], result["height"]) == (96, 64)
    assert result["codec"] == "ProRes 422 HQ" and result["fps"] > 0
    final = client.status(job["id"])
    assert final["state"] == "done" and final["frames_done"] == 5 and final["error"] is None
    assert final["started"] >= final["created"] and final["finished"] >= final["started"]
    info = probe(str(out))
    assert info.frame_count == 5 and info.start_timecode == "01:00:00:02"
    ids = [j["id"] for j in client.jobs()]
    assert job["id"] in ids and ids == [j["id"] for j in sorted(client.jobs(), key=lambda j: -j["created"])]
    assert job["id"] in [j["id"] for j in client.jobs("done")] and job["id"] not in [j["id"] for j in
                                                                                     client.jobs("queued")]
    with pytest.raises(vdiff_client.VdiffClientError, match="already done") as err:
        client.cancel(job["id"])
    assert err.value.status == 409
    # the same output again is refused now that it exists; with overwrite it is replaced
    with pytest.raises(vdiff_client.VdiffClientError, match="already exists"):
        client.submit(str(clip), str(out), model="cnn")
    again = client.submit(str(clip), str(out), model="cnn", overwrite=True, copy_streams=False,
                          ops={"crop": "64:48:8:8", "rotate": 90}, fields="separate")
    assert again["options"]["fields"] == "separate"
    assert client.wait(again["id"], timeout=30, poll=0.05)["width"] == 48
    assert probe(str(out)).width == 48 and not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


def test_cancel_failing_job_and_queue(server, kit, tmp_path):
    """A long job is cancelled while running, a queued job is cancelled at once, a job whose clip turned corrupt
    fails with a clear error, and the next job still runs: nothing is lost, the server keeps serving."""
    client = server.client()
    long_clip = make_clip(tmp_path / "long.mov", n=60, width=320, height=240)
    doomed = make_clip(tmp_path / "doomed.mov", n=4, width=64, height=48)
    small = make_clip(tmp_path / "small.mov", n=4, width=64, height=48)
    a = client.submit(str(long_clip), str(tmp_path / "a.mov"), model="temporal3")
    b = client.submit(str(doomed), str(tmp_path / "b.mov"), model="cnn")
    c = client.submit(str(small), str(tmp_path / "c.mov"), model="cnn")
    d = client.submit(str(small), str(tmp_path / "d.mov"), model="cnn")
    with pytest.raises(vdiff_client.VdiffClientError, match="already writing") as err:
        client.submit(str(small), str(tmp_path / "d.mov"), model="cnn")
    assert err.value.status == 409
    doomed.write_bytes(os.urandom(2000))  # corrupt while it waits in the queue
    assert client.cancel(c["id"])["state"] == "cancelled"
    deadline = time.monotonic() + 20
    while client.status(a["id"])["frames_done"] < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    running = client.status(a["id"])
    assert running["state"] == "running" and running["fps"] and running["eta"] is not None
    assert running["frames_total"] == 60
    assert client.cancel(a["id"])["id"] == a["id"]
    with pytest.raises(vdiff_client.VdiffClientError, match="cancelled"):
        client.wait(a["id"], timeout=20, poll=0.05)
    with pytest.raises(vdiff_client.VdiffClientError, match="failed: .*doomed.mov"):
        client.wait(b["id"], timeout=20, poll=0.05)
    assert client.wait(d["id"], timeout=20, poll=0.05)["frames"] == 4
    with pytest.raises(vdiff_client.VdiffClientError, match="is failed: .*doomed") as err:
        client.result(b["id"])
    assert err.value.status == 409
    states = {j["id"]: j["state"] for j in client.jobs()}
    assert [states[x["id"]] for x in (a, b, c, d)] == ["cancelled", "failed", "cancelled", "done"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["d.mov", "doomed.mov", "long.mov", "small.mov"]


def test_status_stop_and_stale_server_json(tmp_path, kit, monkeypatch):
    srv = Server(tmp_path, kit)
    use_env(monkeypatch, srv.env)
    try:
        assert srv.cli("--status").returncode == 1
        srv.start()
        res = srv.cli("--status")
        assert res.returncode == 0 and f"pid {srv.proc.pid}" in res.stdout and str(srv.info["port"]) in res.stdout
        again = srv.cli()  # a second server refuses to start over the first
        assert again.returncode != 0 and "already running" in again.stderr
        res = srv.cli("--stop")
        assert res.returncode == 0 and "stopped" in res.stdout
        assert srv.proc.wait(10) == 0 and not (srv.data / "server.json").exists()
        assert srv.cli("--status").returncode == 1
        assert "stopped" in (tmp_path / "log" / "server.log").read_text()
        # a crash leaves server.json behind; its dead pid marks it stale
        srv.start()
        srv.kill()
        assert (srv.data / "server.json").exists()
        res = srv.cli("--status")
        assert res.returncode == 1 and "not running" in res.stdout
        assert vdiff_client.read_server_info() is None
        srv.start()
        assert srv.client().health()["status"] == "ok"
        srv.proc.terminate()  # SIGTERM stops it as gracefully as --stop
        assert srv.proc.wait(15) == 0 and not (srv.data / "server.json").exists()
    finally:
        srv.close()


def test_client_is_stdlib_only_and_python310_syntax():
    import ast

    path = ROOT / "resolve_scripts" / "vdiff_client.py"
    tree = ast.parse(path.read_text(), feature_version=(3, 10))
    names = {a.name.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    names |= {n.module.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module}
    assert names <= set(sys.stdlib_module_names) | {"__future__"}, names


def test_client_starts_the_server_on_demand(tmp_path, kit, monkeypatch):
    env = server_env(tmp_path, kit)
    use_env(monkeypatch, env)
    monkeypatch.setenv("PYTHONPATH", env["PYTHONPATH"])
    install = tmp_path / "install.json"
    install.write_text(json.dumps({"python": sys.executable, "serve": serve_command()}))
    with pytest.raises(vdiff_client.VdiffClientError, match="not running"):
        vdiff_client.connect(start=False)
    with pytest.raises(vdiff_client.VdiffClientError, match="does not say how to start"):
        vdiff_client.connect(install_json=tmp_path / "missing.json", timeout=1)
    client = None
    try:
        client = vdiff_client.connect(install_json=install, timeout=40)
        assert client.health()["status"] == "ok"
        clip = make_clip(tmp_path / "c.mov", n=3, width=64, height=48)
        job = client.submit(str(clip), str(tmp_path / "o.mov"), model="cnn")
        assert client.wait(job["id"], timeout=30, poll=0.05)["frames"] == 3
        src = [f.rgb for f in decode_frames(probe(str(clip)))]
        got = [f.rgb for f in decode_frames(probe(str(tmp_path / "o.mov")))]
        assert len(got) == 3 and np.abs(got[1] - src[1]).mean() < 0.1
    finally:
        if client is not None:
            try:
                client.shutdown()
            except vdiff_client.VdiffClientError:
                pass
        info = json.loads((tmp_path / "data" / "server.json").read_text()) \
            if (tmp_path / "data" / "server.json").exists() else None
        deadline = time.monotonic() + 15
        while info and vdiff_client._pid_alive(info["pid"]) and time.monotonic() < deadline:
            time.sleep(0.1)
        if info and vdiff_client._pid_alive(info["pid"]):
            os.kill(info["pid"], 9)


def test_auto_strength_and_temporal_cuts_match_the_cli(server, tmp_path):
    """A server job analyses the clip as `vdiff enhance` does: shot cuts reset a temporal model's window, and
    "strength": "auto" measures each shot; the outputs equal the CLI's frame for frame."""
    from test_analysis import scene, write_clip
    from vdiff_ofx.pipeline import Job, run

    rng = np.random.default_rng(8)
    shots = [(0, 6)] * 6 + [(1, 20)] * 6  # (scene, noise sigma) per frame: a cut at 6
    frames = [np.clip(scene(k, 64, 96) + rng.normal(0, s / 255, (64, 96, 3)), 0, 1) for k, s in shots]
    clip = write_clip(tmp_path / "two.mkv", frames)
    client = server.client()
    for model, strength in (("temporal3", None), ("sigma", "auto")):
        out, ref = tmp_path / f"{model}.mov", tmp_path / f"{model}_cli.mov"
        job = client.submit(str(clip), str(out), model=model, **({"strength": strength} if strength else {}))
        assert client.wait(job["id"], timeout=60, poll=0.05)["frames"] == 12
        run(Job(str(clip), str(ref), model=model, strength=strength))
        got = [f.rgb for f in decode_frames(probe(str(out)))]
        want = [f.rgb for f in decode_frames(probe(str(ref)))]
        assert max(float(np.abs(a - b).max()) for a, b in zip(got, want)) <= 1e-6
    assert "cuts [6]" in (server.base / "log" / "server.log").read_text()


def test_analysis_shows_progress_and_cancels(server, tmp_path):
    """While a job analyses its clip (here for "strength": "auto") it reports phase "analysing" with the analysis'
    own frames, fps and ETA (a long clip analyses for minutes before its first enhanced frame); cancelling then stops
    it within the analysis and writes nothing."""
    client = server.client()
    clip = make_clip(tmp_path / "long.mov", n=1200, width=256, height=192)
    out = tmp_path / "auto.mov"
    job = client.submit(str(clip), str(out), model="sigma", strength="auto", start=100, end=1100)
    seen = None
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        seen = client.status(job["id"])
        if seen.get("phase") == "analysing" and seen["analysis"]["frames_done"] >= 20:
            break
        time.sleep(0.01)
    assert seen["state"] == "running" and seen["phase"] == "analysing", seen
    a = seen["analysis"]
    assert a["frames_total"] == 1000 + 2 * 8 and 20 <= a["frames_done"] < a["frames_total"]  # the range, 8 either side
    assert a["fps"] > 0 and a["eta"] > 0 and seen["frames_done"] == 0 and seen["frames_total"] == 1000
    client.cancel(job["id"])
    t0 = time.monotonic()
    with pytest.raises(vdiff_client.VdiffClientError, match="cancelled"):
        client.wait(job["id"], timeout=20, poll=0.02)
    assert time.monotonic() - t0 < 5
    assert not out.exists() and not [p for p in tmp_path.iterdir() if p.name.startswith(".")]
    assert "phase" not in client.status(job["id"])  # only a running job has one
