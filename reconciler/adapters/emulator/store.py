"""Persistence for the emulator: one sqlite database (in memory, or a file shared by processes).

sqlite gives durability and cross-process transactions for free: every request runs inside one
``BEGIN IMMEDIATE`` transaction, so two CLI runs on the same state directory never interleave.
The connection is shared by threads; callers serialise access with the emulator's lock.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import astuple, fields
from pathlib import Path
from typing import Any

from reconciler.adapters.emulator.models import CallRecord, EventRecord, Job, Project
from reconciler.errors import EmulatorError

SCHEMA_VERSION = "1"
_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS projects (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, project_id TEXT UNIQUE NOT NULL, title TEXT NOT NULL,
    description TEXT, cover_url TEXT, timeline TEXT, region_id TEXT NOT NULL,
    storage_location TEXT NOT NULL, status TEXT NOT NULL, creation_time INTEGER NOT NULL,
    modified_time INTEGER NOT NULL, last_job TEXT, duration REAL NOT NULL DEFAULT 0);
CREATE TABLE IF NOT EXISTS jobs (
    media_id TEXT PRIMARY KEY, project_id TEXT NOT NULL, submitted REAL NOT NULL, due REAL NOT NULL,
    ok INTEGER NOT NULL, error_code TEXT, error_message TEXT, callback_url TEXT,
    duration REAL NOT NULL, settled INTEGER NOT NULL DEFAULT 0);
CREATE INDEX IF NOT EXISTS jobs_pending ON jobs (settled, due);
CREATE TABLE IF NOT EXISTS media (media_id TEXT PRIMARY KEY, duration REAL NOT NULL,
    source TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS calls (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, time REAL NOT NULL, action TEXT NOT NULL,
    params TEXT NOT NULL, version TEXT NOT NULL, project_ids TEXT NOT NULL, status INTEGER NOT NULL,
    code TEXT NOT NULL, request_id TEXT NOT NULL, access_key_id TEXT, dropped INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS counts (action TEXT NOT NULL, project_id TEXT NOT NULL,
    n INTEGER NOT NULL, PRIMARY KEY (action, project_id));
CREATE TABLE IF NOT EXISTS events (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, time REAL NOT NULL, media_id TEXT NOT NULL,
    event TEXT NOT NULL, callback_url TEXT, delivery TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0, last_error TEXT);
"""
_PROJECT_COLS = ", ".join(f.name for f in fields(Project))
_JOB_COLS = ", ".join(f.name for f in fields(Job))


class Store:
    """Typed access to the emulator tables. Not thread-safe on its own."""

    def __init__(self, path: Path | None) -> None:
        target = ":memory:" if path is None else str(path)
        try:
            self._db = sqlite3.connect(
                target, timeout=30.0, isolation_level=None, check_same_thread=False
            )
            if path is not None:
                self._db.execute("PRAGMA journal_mode=WAL")
                self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.executescript(_SCHEMA)
        except sqlite3.Error as exc:
            raise EmulatorError(f"cannot open the emulator store {target}: {exc}") from exc
        found = self.get_meta("schema")
        if found is None:
            self.set_meta("schema", SCHEMA_VERSION)
        elif found != SCHEMA_VERSION:
            raise EmulatorError(
                f"emulator store {target} has schema {found}, expected "
                f"{SCHEMA_VERSION}; use another --data directory"
            )
        self._depth = 0

    def close(self) -> None:
        self._db.close()

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """One write transaction (re-entrant: inner blocks join the outer one)."""
        if self._depth:
            self._depth += 1
            try:
                yield
            finally:
                self._depth -= 1
            return
        self._db.execute("BEGIN IMMEDIATE")
        self._depth = 1
        try:
            yield
        except BaseException:
            self._depth = 0
            self._db.execute("ROLLBACK")
            raise
        self._depth = 0
        self._db.execute("COMMIT")

    # ------------------------------------------------------------------ meta
    def get_meta(self, key: str) -> str | None:
        row = self._db.execute("SELECT value FROM meta WHERE key=?", (key,)).fetchone()
        return None if row is None else str(row[0])

    def set_meta(self, key: str, value: str) -> None:
        self._db.execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", (key, value))

    # ------------------------------------------------------------------ projects
    def insert_project(self, project: Project) -> None:
        marks = ", ".join("?" * len(fields(Project)))
        self._db.execute(
            f"INSERT INTO projects ({_PROJECT_COLS}) VALUES ({marks})", astuple(project)
        )

    def get_project(self, project_id: str) -> Project | None:
        row = self._db.execute(
            f"SELECT {_PROJECT_COLS} FROM projects WHERE project_id=?", (project_id,)
        ).fetchone()
        return None if row is None else Project(*row)

    def save_project(self, project: Project) -> None:
        names = [f.name for f in fields(Project) if f.name != "project_id"]
        sets = ", ".join(f"{n}=?" for n in names)
        values = [getattr(project, n) for n in names]
        self._db.execute(
            f"UPDATE projects SET {sets} WHERE project_id=?", [*values, project.project_id]
        )

    def delete_projects(self, project_ids: Sequence[str]) -> list[str]:
        deleted = []
        for pid in project_ids:
            if self._db.execute("DELETE FROM projects WHERE project_id=?", (pid,)).rowcount:
                deleted.append(pid)
        return deleted

    def search_projects(
        self,
        *,
        title: str | None,
        statuses: Sequence[str] | None,
        start: int | None,
        end: int | None,
        ascending: bool,
        offset: int,
        limit: int,
    ) -> tuple[int, list[Project]]:
        where, args = ["1=1"], []  # type: list[str], list[Any]
        if title:
            where.append("instr(title, ?) > 0")
            args.append(title)
        if statuses:
            where.append(f"status IN ({', '.join('?' * len(statuses))})")
            args.extend(statuses)
        if start is not None:
            where.append("creation_time >= ?")
            args.append(start)
        if end is not None:
            where.append("creation_time <= ?")
            args.append(end)
        cond = " AND ".join(where)
        total = int(
            self._db.execute(f"SELECT COUNT(*) FROM projects WHERE {cond}", args).fetchone()[0]
        )
        order = "ASC" if ascending else "DESC"
        rows = self._db.execute(
            f"SELECT {_PROJECT_COLS} FROM projects WHERE {cond} "
            f"ORDER BY creation_time {order}, seq {order} LIMIT ? OFFSET ?",
            [*args, limit, offset],
        ).fetchall()
        return total, [Project(*r) for r in rows]

    def all_projects(self) -> list[Project]:
        rows = self._db.execute(f"SELECT {_PROJECT_COLS} FROM projects ORDER BY seq").fetchall()
        return [Project(*r) for r in rows]

    # ------------------------------------------------------------------ jobs
    def insert_job(self, job: Job) -> None:
        marks = ", ".join("?" * len(fields(Job)))
        self._db.execute(f"INSERT INTO jobs ({_JOB_COLS}) VALUES ({marks})", astuple(job))

    def get_job(self, media_id: str) -> Job | None:
        row = self._db.execute(
            f"SELECT {_JOB_COLS} FROM jobs WHERE media_id=?", (media_id,)
        ).fetchone()
        return None if row is None else _job(row)

    def jobs(self) -> list[Job]:
        rows = self._db.execute(f"SELECT {_JOB_COLS} FROM jobs ORDER BY submitted").fetchall()
        return [_job(r) for r in rows]

    def due_jobs(self, now: float) -> list[Job]:
        rows = self._db.execute(
            f"SELECT {_JOB_COLS} FROM jobs WHERE settled=0 AND due<=? ORDER BY due", (now,)
        ).fetchall()
        return [_job(r) for r in rows]

    def claim_job(self, media_id: str) -> bool:
        """Mark a job settled; True only for the one caller (in any process) that did it."""
        cur = self._db.execute(
            "UPDATE jobs SET settled=1 WHERE media_id=? AND settled=0", (media_id,)
        )
        return cur.rowcount == 1

    # ------------------------------------------------------------------ media
    def media_duration(self, media_id: str) -> float | None:
        row = self._db.execute(
            "SELECT duration FROM media WHERE media_id=?", (media_id,)
        ).fetchone()
        return None if row is None else float(row[0])

    def put_media(self, media_id: str, duration: float, source: str) -> None:
        self._db.execute(
            "INSERT OR REPLACE INTO media (media_id, duration, source) VALUES (?, ?, ?)",
            (media_id, duration, source),
        )

    def media(self) -> dict[str, float]:
        rows = self._db.execute("SELECT media_id, duration FROM media ORDER BY media_id")
        return {str(m): float(d) for m, d in rows}

    # ------------------------------------------------------------------ calls
    def insert_call(self, call: CallRecord, cap: int) -> None:
        cur = self._db.execute(
            "INSERT INTO calls (time, action, params, version, project_ids, status, code, "
            "request_id, access_key_id, dropped) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                call.time,
                call.action,
                json.dumps(call.params, ensure_ascii=False),
                call.signature_version,
                ",".join(call.project_ids),
                call.status,
                call.code,
                call.request_id,
                call.access_key_id,
                int(call.dropped),
            ),
        )
        # project_id "" holds the per-action total (one per call, whatever it touched)
        for pid in ("", *call.project_ids):
            self._db.execute(
                "INSERT INTO counts (action, project_id, n) VALUES (?, ?, 1) "
                "ON CONFLICT (action, project_id) DO UPDATE SET n = n + 1",
                (call.action, pid),
            )
        seq = cur.lastrowid or 0
        if seq % 1000 == 0 and seq > cap:  # trim in batches, not on every insert
            self._db.execute("DELETE FROM calls WHERE seq <= ?", (seq - cap,))

    def calls(self, *, action: str | None = None, limit: int | None = None) -> list[CallRecord]:
        sql = (
            "SELECT time, action, params, version, project_ids, status, code, request_id, "
            "access_key_id, dropped FROM calls"
        )
        args: list[Any] = []
        if action:
            sql += " WHERE action=?"
            args.append(action)
        sql += " ORDER BY seq DESC LIMIT ?"
        args.append(-1 if limit is None else limit)
        rows = self._db.execute(sql, args).fetchall()
        return [
            CallRecord(
                t, a, json.loads(p), v, tuple(x for x in i.split(",") if x), s, c, r, k, bool(d)
            )
            for t, a, p, v, i, s, c, r, k, d in reversed(rows)
        ]

    def counts(self) -> list[tuple[str, str, int]]:
        rows = self._db.execute(
            "SELECT action, project_id, n FROM counts ORDER BY action, project_id"
        ).fetchall()
        return [(str(a), str(p), int(n)) for a, p, n in rows]

    def reset_calls(self) -> None:
        self._db.execute("DELETE FROM calls")
        self._db.execute("DELETE FROM counts")

    # ------------------------------------------------------------------ events
    def insert_event(self, rec: EventRecord) -> int:
        cur = self._db.execute(
            "INSERT INTO events (time, media_id, event, callback_url, delivery, attempts) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            (
                rec.time,
                rec.media_id,
                json.dumps(rec.event),
                rec.callback_url,
                rec.delivery,
                rec.attempts,
            ),
        )
        return cur.lastrowid or 0

    def update_event(self, seq: int, delivery: str, attempts: int, error: str | None) -> None:
        self._db.execute(
            "UPDATE events SET delivery=?, attempts=?, last_error=? WHERE seq=?",
            (delivery, attempts, error, seq),
        )

    def events(self) -> list[EventRecord]:
        rows = self._db.execute(
            "SELECT seq, time, media_id, event, callback_url, delivery, "
            "attempts, last_error FROM events ORDER BY seq"
        ).fetchall()
        return [
            EventRecord(s, t, m, json.loads(e), u, d, a, le) for s, t, m, e, u, d, a, le in rows
        ]


def _job(row: Sequence[Any]) -> Job:
    job = Job(*row)
    job.ok, job.settled = bool(job.ok), bool(job.settled)
    return job
