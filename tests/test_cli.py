"""The `vdiff` command as a user runs it: real subprocesses, exit codes, one-line errors, Ctrl-C."""

from __future__ import annotations

import signal
import subprocess
import sys
import time

import pytest

from clips import make_clip


@pytest.fixture()
def env(kit_env):
    return kit_env


def vdiff(args, env, **kw):
    return subprocess.run([sys.executable, "-m", "vdiff_ofx.cli", *args], env=env, capture_output=True,
                          text=True, timeout=120, **kw)


def test_enhance_prints_result(env, tmp_path):
    clip = make_clip(tmp_path / "a.mp4", n=6)
    r = vdiff(["enhance", str(clip), "-o", str(tmp_path / "a.mov"), "-m", "cnn", "-q"], env)
    assert r.returncode == 0, r.stderr
    assert "wrote" in r.stdout and "6 frames" in r.stdout and (tmp_path / "a.mov").is_file()


def test_tta_views_change_the_output_and_bad_count_is_one_line(env, tmp_path):
    from vdiff_ofx.io.decode import decode_frames
    from vdiff_ofx.io.probe import probe

    clip = make_clip(tmp_path / "a.mp4", n=3)
    outs = []
    for n in (1, 4):
        out = tmp_path / f"t{n}.mov"
        r = vdiff(["enhance", str(clip), "-o", str(out), "-m", "cnn", "--tta", str(n), "-q"], env)
        assert r.returncode == 0, r.stderr
        outs.append(next(iter(decode_frames(probe(str(out)), 1, 2))).rgb)
    assert abs(outs[0] - outs[1]).max() > 1 / 255  # the views really ran and were averaged
    r = vdiff(["enhance", str(clip), "-o", str(tmp_path / "bad.mov"), "-m", "cnn", "--tta", "3"], env)
    assert r.returncode != 0 and r.stderr.strip() == "vdiff: --tta 3 must be one of 1, 2, 4, 8"
    assert not (tmp_path / "bad.mov").exists()


@pytest.mark.parametrize("make,expect", [
    (lambda p: p.write_bytes(b"junk" * 50) or p, "vdiff: "),
    (lambda p: p, "vdiff: "),  # missing file
])
def test_bad_input_is_one_line_no_traceback(env, tmp_path, make, expect):
    src = make(tmp_path / "bad.mov")
    r = vdiff(["enhance", str(src), "-o", str(tmp_path / "o.mov"), "-m", "cnn"], env)
    assert r.returncode != 0
    assert "Traceback" not in r.stderr and r.stderr.startswith(expect)
    assert len(r.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "o.mov").exists()


def test_unknown_model_and_models_list(env, tmp_path):
    clip = make_clip(tmp_path / "a.mp4", n=3)
    r = vdiff(["enhance", str(clip), "-m", "nope"], env)
    assert r.returncode == 4 and "unknown model 'nope'" in r.stderr
    r = vdiff(["models", "verify"], env)
    assert r.returncode == 0 and "up2" in r.stdout and "[ok]" in r.stdout


def test_ctrl_c_exits_130_and_cleans_up(env, tmp_path):
    clip = make_clip(tmp_path / "long.mp4", n=300, width=320, height=240)
    out = tmp_path / "long.mov"
    proc = subprocess.Popen([sys.executable, "-m", "vdiff_ofx.cli", "enhance", str(clip), "-o", str(out),
                             "-m", "cnn", "-q"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not any("vdiff-partial" in p.name for p in tmp_path.iterdir()):
        time.sleep(0.05)
    time.sleep(0.5)
    proc.send_signal(signal.SIGINT)
    sent = time.monotonic()
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 130, err
    assert time.monotonic() - sent < 3
    assert "cancelled" in err
    assert not out.exists() and not any("vdiff-partial" in p.name for p in tmp_path.iterdir())


def test_doctor_reports_providers(env):
    r = vdiff(["doctor", "-m", "cnn"], env)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "CPUExecutionProvider" in r.stdout and "runs on: CPUExecutionProvider" in r.stdout
