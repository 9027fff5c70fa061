"""Load: several client threads submit many small jobs to one real server and poll them concurrently; within a
time bound every job is accounted for, done, with a valid output, and the API kept answering throughout."""

from __future__ import annotations

import threading
import time

import pytest

from clips import make_clip
from onnx_kit import standard_set
from test_server_kit import Server, use_env, vdiff_client
from vdiff_ofx.io.probe import probe

CLIENTS, JOBS, FRAMES = 3, 8, 4


@pytest.fixture()
def server(tmp_path, monkeypatch):
    kit = standard_set(tmp_path / "kit")
    (tmp_path / "srv").mkdir()
    srv = Server(tmp_path / "srv", kit, "--workers", "2")
    use_env(monkeypatch, srv.env)
    try:
        yield srv.start()
    finally:
        srv.close()


def test_many_clients_many_jobs(server, tmp_path):
    clips = [make_clip(tmp_path / f"clip{i}.mov", n=FRAMES, width=64, height=48) for i in range(CLIENTS)]
    submitted: dict[str, str] = {}
    results: dict[str, dict] = {}
    errors: list[str] = []
    polls = [0]
    lock = threading.Lock()
    started = time.monotonic()

    def client_thread(c: int) -> None:
        try:
            client = vdiff_client.connect(start=False, timeout=10)
            mine = []
            for j in range(JOBS):
                out = tmp_path / f"out_{c}_{j}.mov"
                job = client.submit(str(clips[c]), str(out), model="cnn" if j % 2 else "sigma")
                mine.append(job["id"])
                with lock:
                    submitted[job["id"]] = str(out)
                client.status(mine[0])
            pending = set(mine)
            while pending and time.monotonic() - started < 50:
                for job_id in list(pending):
                    job = client.status(job_id)
                    with lock:
                        polls[0] += 1
                    if job["state"] in ("done", "failed", "cancelled"):
                        pending.discard(job_id)
                        with lock:
                            results[job_id] = job
                client.jobs("running")
                time.sleep(0.02)
        except Exception as exc:  # reported by the main thread
            errors.append(f"client {c}: {exc}")

    threads = [threading.Thread(target=client_thread, args=(c,)) for c in range(CLIENTS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    elapsed = time.monotonic() - started
    assert not errors, errors
    assert elapsed < 60, f"load test took {elapsed:.1f}s"
    assert len(submitted) == CLIENTS * JOBS and set(results) == set(submitted)
    assert {j["state"] for j in results.values()} == {"done"}, [j["error"] for j in results.values()]
    client = server.client()
    listed = {j["id"]: j for j in client.jobs()}
    assert set(listed) == set(submitted) and all(j["state"] == "done" for j in listed.values())
    for job_id, out in submitted.items():
        assert client.result(job_id)["frames"] == FRAMES
        info = probe(out)
        assert (info.frame_count, info.width, info.height) == (FRAMES, 64, 48)
    health = client.health()
    assert health["jobs"]["done"] == CLIENTS * JOBS and health["jobs_queued"] == health["jobs_running"] == 0
    print(f"{CLIENTS * JOBS} jobs in {elapsed:.1f}s, {polls[0]} status polls")
