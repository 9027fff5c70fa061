"""Audio the output's container cannot take as it is (Opus into .mov, 16-bit PCM into .mp4) is re-encoded, not lost
with the whole job at its last step; audio it can take is still copied byte for byte."""

from __future__ import annotations

from fractions import Fraction

import av
import numpy as np
import pytest

from onnx_kit import standard_set
from test_server_kit import Server, use_env
from vdiff_ofx.engine.providers import Backend
from vdiff_ofx.io.copies import trial_mux
from vdiff_ofx.pipeline import Job, run

RATE = 48000


def write_source(path, fmt: str, vcodec: str, acodec: str, n: int = 20, layout: str = "stereo") -> np.ndarray:
    """``n`` frames at 25 fps and a 440 Hz tone as long; returns the tone as written (channels x samples)."""
    tone = (0.3 * np.sin(2 * np.pi * 440 * np.arange(RATE * n // 25) / RATE)).astype(np.float32)
    channels = len(av.AudioLayout(layout).channels)
    with av.open(str(path), "w", format=fmt) as out:
        vs = out.add_stream(vcodec, rate=25, options={"deadline": "realtime", "cpu-used": "8"}
                            if vcodec == "libvpx-vp9" else {})
        vs.width, vs.height, vs.pix_fmt = 96, 64, "yuv420p"
        a = out.add_stream(acodec, rate=RATE, layout=layout)
        for i in range(n):
            rgb = np.zeros((64, 96, 3), np.uint8)
            rgb[:, 4 * i:4 * i + 8] = 200
            f = av.VideoFrame.from_ndarray(rgb, format="rgb24").reformat(format="yuv420p")
            f.pts, f.time_base = i, Fraction(1, 25)
            for p in vs.encode(f):
                out.mux(p)
        for p in vs.encode():
            out.mux(p)
        fmt_a = a.codec_context.format.name
        step = a.codec_context.frame_size or 1024
        for k in range(0, tone.size, step):
            chunk = np.repeat(tone[None, k:k + step], channels, 0)
            if fmt_a == "s16":
                af = av.AudioFrame.from_ndarray((chunk.T.reshape(1, -1) * 32767).astype(np.int16), format="s16",
                                                layout=layout)
            else:
                af = av.AudioFrame.from_ndarray(chunk, format="fltp", layout=layout)
            af.sample_rate, af.pts = RATE, k
            for p in a.encode(af):
                out.mux(p)
        for p in a.encode():
            out.mux(p)
    return tone


def audio_of(path) -> tuple[str, str, np.ndarray]:
    """(codec, layout, first channel as float) of the file's audio stream."""
    with av.open(str(path)) as c:
        st = c.streams.audio[0]
        frames = [f.to_ndarray() for f in c.decode(st)]
        name, layout = st.codec_context.name, st.codec_context.layout.name
    data = np.concatenate(frames, axis=1).astype(np.float64)
    if data.shape[0] == 1 and layout == "stereo":  # packed: L R L R ...
        data = data.reshape(-1, 2).T
    scale = {"int16": 32768.0, "int32": 2147483648.0}.get(str(frames[0].dtype), 1.0)
    return name, layout, data[0] / scale


def peak_hz(x: np.ndarray) -> float:
    spectrum = np.abs(np.fft.rfft(x * np.hanning(x.size)))
    return float(np.argmax(spectrum) * RATE / x.size)


@pytest.mark.parametrize("src_name, fmt, vcodec, acodec, out_name, want", [
    ("web.webm", "webm", "libvpx-vp9", "libopus", "out.mov", "pcm_s24le"),   # .mov refuses Opus
    ("dv.avi", "avi", "mpeg4", "pcm_s16le", "out.mp4", "aac"),               # MP4 fails at the trailer on PCM
])
def test_audio_the_container_refuses_is_reencoded(kit, tmp_path, caplog, src_name, fmt, vcodec, acodec, out_name,
                                                  want):
    src = tmp_path / src_name
    tone = write_source(src, fmt, vcodec, acodec)
    out_fmt = {"out.mov": "mov", "out.mp4": "mp4"}[out_name]
    assert trial_mux(out_fmt, str(src), 1) is not None  # the muxer's codec list says yes; the trial says no
    with caplog.at_level("WARNING", logger="vdiff_ofx.io.copies"):
        run(Job(str(src), str(tmp_path / out_name), model="cnn", backend=Backend(providers=["cpu"], threads=1)))
    assert any("re-encoded as " + want in r.getMessage() for r in caplog.records)
    name, layout, got = audio_of(tmp_path / out_name)
    assert name == want and layout == "stereo"
    assert abs(got.size - tone.size) <= 2048  # AAC pads its last frame and primes the first
    assert peak_hz(got[:tone.size]) == pytest.approx(440, abs=3)
    if want == "pcm_s24le":  # lossless from the decoded Opus: the same samples as the source decodes to
        _, _, decoded = audio_of(src)
        n = min(decoded.size, got.size)
        assert np.abs(decoded[:n] - got[:n]).max() < 1e-6


def test_audio_the_container_takes_is_still_copied(kit, tmp_path):
    src = tmp_path / "aac.mp4"
    write_source(src, "mp4", "libx264", "aac")
    out = tmp_path / "out.mov"
    run(Job(str(src), str(out), model="cnn", backend=Backend(providers=["cpu"], threads=1)))

    def packets(path):
        with av.open(str(path)) as c:
            return [bytes(p) for p in c.demux(c.streams.audio[0]) if p.size]

    assert packets(out) == packets(src)


def test_server_join_reencodes_too(tmp_path, monkeypatch):
    """A server job's segments are remuxed into the output: the same re-encoding happens at that join."""
    srv = Server(tmp_path / "srv", standard_set(tmp_path / "kit"), "--segment-frames", "6")
    (tmp_path / "srv").mkdir()
    use_env(monkeypatch, srv.env)
    src = tmp_path / "web.webm"
    tone = write_source(src, "webm", "libvpx-vp9", "libopus")
    out = tmp_path / "joined.mov"
    try:
        srv.start()
        client = srv.client()
        assert client.wait(client.submit(str(src), str(out), model="cnn")["id"], timeout=60, poll=0.05)["frames"] == 20
    finally:
        srv.close()
    name, _, got = audio_of(out)
    assert name == "pcm_s24le" and abs(got.size - tone.size) <= 1024 and peak_hz(got) == pytest.approx(440, abs=3)
