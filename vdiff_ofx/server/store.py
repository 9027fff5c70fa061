"""The job store: SQLite in the user's data folder (WAL), so queued, running and finished jobs survive a restart
and a crashed job knows which of its segments are already on disk. One connection guarded by a lock: the
server's writes are tiny and rare next to video work."""

from __future__ import annotations

import json
import secrets
import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable

from ..paths import user_dir

STATES = ("queued", "running", "done", "failed", "cancelled")
FINISHED = ("done", "failed", "cancelled")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    id TEXT PRIMARY KEY, state TEXT NOT NULL, input TEXT NOT NULL, output TEXT NOT NULL, model TEXT NOT NULL,
    options TEXT NOT NULL, frames_done INTEGER NOT NULL DEFAULT 0, frames_total INTEGER NOT NULL DEFAULT 0,
    fps REAL, eta REAL, error TEXT, result TEXT, created REAL NOT NULL, started REAL, finished REAL,
    seq INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS jobs_state ON jobs(state, seq);
CREATE TABLE IF NOT EXISTS segments (
    job_id TEXT NOT NULL, idx INTEGER NOT NULL, start INTEGER NOT NULL, "end" INTEGER NOT NULL,
    path TEXT NOT NULL, done INTEGER NOT NULL DEFAULT 0, PRIMARY KEY (job_id, idx)
);
"""


@dataclass
class Segment:
    """Frames [start, end) of a job, written to ``path``; ``done`` once the file is complete."""

    idx: int
    start: int
    end: int
    path: str
    done: bool


def db_path() -> Path:
    return user_dir("data") / "jobs.sqlite"


class JobStore:
    """Jobs and their segments. Every method is thread-safe."""

    def __init__(self, path: Path | None = None) -> None:
        self.path = path or db_path()
        self._lock = threading.Lock()
        self._db = sqlite3.connect(str(self.path), check_same_thread=False, isolation_level=None, timeout=10)
        self._db.row_factory = sqlite3.Row
        with self._lock:
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.executescript(_SCHEMA)

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def _exec(self, sql: str, args: Iterable[Any] = ()) -> list[sqlite3.Row]:
        with self._lock:
            return self._db.execute(sql, tuple(args)).fetchall()

    # -- jobs ----------------------------------------------------------------------------------------------
    def add(self, input: str, output: str, model: str, options: dict[str, Any], frames_total: int) -> dict:
        job_id = "j_" + secrets.token_hex(6)
        now = time.time()
        with self._lock:
            seq = self._db.execute("SELECT COALESCE(MAX(seq), 0) + 1 FROM jobs").fetchone()[0]
            self._db.execute(
                "INSERT INTO jobs (id, state, input, output, model, options, frames_total, created, seq) "
                "VALUES (?, 'queued', ?, ?, ?, ?, ?, ?, ?)",
                (job_id, input, output, model, json.dumps(options), frames_total, now, seq))
        return self.get(job_id)  # type: ignore[return-value]

    def get(self, job_id: str) -> dict | None:
        rows = self._exec("SELECT * FROM jobs WHERE id = ?", (job_id,))
        return _job(rows[0]) if rows else None

    def list(self, state: str | None = None) -> list[dict]:
        if state:
            rows = self._exec("SELECT * FROM jobs WHERE state = ? ORDER BY seq DESC", (state,))
        else:
            rows = self._exec("SELECT * FROM jobs ORDER BY seq DESC")
        return [_job(r) for r in rows]

    def counts(self) -> dict[str, int]:
        rows = self._exec("SELECT state, COUNT(*) AS n FROM jobs GROUP BY state")
        return {s: 0 for s in STATES} | {r["state"]: r["n"] for r in rows}

    def claim_next(self) -> dict | None:
        """Atomically move the oldest queued job to running and return it (None when the queue is empty)."""
        with self._lock:
            row = self._db.execute("SELECT id FROM jobs WHERE state = 'queued' ORDER BY seq LIMIT 1").fetchone()
            if row is None:
                return None
            self._db.execute("UPDATE jobs SET state = 'running', started = COALESCE(started, ?), error = NULL "
                             "WHERE id = ?", (time.time(), row["id"]))
            job_id = row["id"]
        return self.get(job_id)

    def update(self, job_id: str, **fields: Any) -> None:
        if "result" in fields and fields["result"] is not None:
            fields["result"] = json.dumps(fields["result"])
        cols = ", ".join(f"{k} = ?" for k in fields)
        self._exec(f"UPDATE jobs SET {cols} WHERE id = ?", [*fields.values(), job_id])

    def set_state(self, job_id: str, state: str, expect: tuple[str, ...] | None = None, **fields: Any) -> bool:
        """Change state (only from one of ``expect`` when given); True when the row changed."""
        if "result" in fields and fields["result"] is not None:
            fields["result"] = json.dumps(fields["result"])
        fields = {"state": state, **fields}
        if state in FINISHED:
            fields.setdefault("finished", time.time())
        cols = ", ".join(f"{k} = ?" for k in fields)
        sql = f"UPDATE jobs SET {cols} WHERE id = ?"
        args: list[Any] = [*fields.values(), job_id]
        if expect:
            sql += f" AND state IN ({', '.join('?' * len(expect))})"
            args += list(expect)
        with self._lock:
            return self._db.execute(sql, args).rowcount > 0

    def requeue_running(self) -> list[str]:
        """After a crash or stop, jobs left 'running' go back to the front of the queue to resume."""
        rows = self._exec("SELECT id FROM jobs WHERE state = 'running'")
        self._exec("UPDATE jobs SET state = 'queued', fps = NULL, eta = NULL WHERE state = 'running'")
        return [r["id"] for r in rows]

    def active_outputs(self) -> dict[str, str]:
        """output path -> job id for queued and running jobs (two jobs must not write one file)."""
        rows = self._exec("SELECT id, output FROM jobs WHERE state IN ('queued', 'running')")
        return {r["output"]: r["id"] for r in rows}

    # -- segments ------------------------------------------------------------------------------------------
    def segments(self, job_id: str) -> list[Segment]:
        rows = self._exec('SELECT idx, start, "end", path, done FROM segments WHERE job_id = ? ORDER BY idx',
                          (job_id,))
        return [Segment(r["idx"], r["start"], r["end"], r["path"], bool(r["done"])) for r in rows]

    def plan_segments(self, job_id: str, segments: list[Segment]) -> None:
        """Record the plan once; a resumed job keeps its first plan even if the server's settings changed."""
        with self._lock:
            self._db.execute("BEGIN")
            try:
                for s in segments:
                    self._db.execute('INSERT OR IGNORE INTO segments (job_id, idx, start, "end", path, done) '
                                     'VALUES (?, ?, ?, ?, ?, 0)', (job_id, s.idx, s.start, s.end, s.path))
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise

    def segment_done(self, job_id: str, idx: int) -> None:
        self._exec("UPDATE segments SET done = 1 WHERE job_id = ? AND idx = ?", (job_id, idx))

    def drop_segments(self, job_id: str) -> None:
        self._exec("DELETE FROM segments WHERE job_id = ?", (job_id,))


def _job(row: sqlite3.Row) -> dict:
    d = dict(row)
    d.pop("seq", None)
    d["options"] = json.loads(d["options"])
    d["result"] = json.loads(d["result"]) if d.get("result") else None
    return d
