"""`vdiff serve` is one warm process for both protocols: the HTTP job API and the frame protocol."""

from __future__ import annotations

import numpy as np

from onnx_kit import standard_set
from test_server_kit import Server, use_env
from vdiff_ofx.engine.enhancer import Enhancer
from vdiff_ofx.server.frames_client import FrameClient


def test_serve_also_answers_frame_protocol(tmp_path, monkeypatch):
    kit = standard_set(tmp_path / "kit")
    (tmp_path / "srv").mkdir()
    sock = tmp_path / "f.sock"
    srv = Server(tmp_path / "srv", kit, "--frames-socket", str(sock))
    use_env(monkeypatch, srv.env)
    try:
        srv.start()
        addr = (tmp_path / "srv" / "config" / "frames.addr").read_text().strip()
        assert addr == f"unix:{sock}"
        frame = np.random.default_rng(0).random((40, 56, 4), dtype=np.float32)
        with FrameClient(addr) as client:
            assert "cnn" in [m.name for m in client.list_models()]
            got = client.enhance(client.open("cnn"), [frame])
        want = Enhancer("cnn")(frame)
        assert got.shape == want.shape and np.abs(got - want).max() < 1e-5
        assert srv.client().health()["status"] == "ok"
    finally:
        srv.close()
    assert not (tmp_path / "srv" / "config" / "frames.addr").exists()
