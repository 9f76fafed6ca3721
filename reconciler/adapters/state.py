"""The state directory: an atomic JSON snapshot, its backup, an append-only journal, a lock.

Layout of ``state/``::

    state.json        snapshot {format_version, serial, lineage, canonical_version, projects}
    state.json.bak    the previous snapshot (what to restore if state.json is damaged)
    journal.jsonl     events since the snapshot, one fsynced JSON line each
    .lock             advisory flock sidecar holding the holder's pid/host/command/since
    .gitignore        keeps the lock, temp files and the embedded emulator out of git

Each journal line carries the serial of the snapshot it applies to, so a crash between
writing a new snapshot and truncating the journal cannot apply an event twice.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

from reconciler.core.state import EVENT_TYPES, STATE_FORMAT_VERSION, State, apply_event
from reconciler.errors import LockHeldError, StateCorruptError, StateError

STATE_FILE = "state.json"
BACKUP_FILE = "state.json.bak"
JOURNAL_FILE = "journal.jsonl"
LOCK_FILE = ".lock"
GITIGNORE = "# written by reconciler: never commit these\n.lock\n*.tmp\nemulator/\ncache/\n"


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _temp_beside(path: Path) -> Path:
    """A fresh temp name next to ``path`` (the lock holder removes leftovers: ``.*.tmp``)."""
    return path.with_name(f".{path.name}.{os.getpid()}.{os.urandom(4).hex()}.tmp")


def atomic_write(path: Path, data: bytes) -> None:
    """temp file in the same directory, fsync, rename over, fsync the directory."""
    tmp = _temp_beside(path)
    try:
        with open(tmp, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
    _fsync_dir(path.parent)


def _keep_as_backup(path: Path, backup: Path) -> None:
    """Make ``backup`` hold what ``path`` holds now: a hard link where the file system has
    them (a snapshot is only ever replaced by a rename, never written in place, so the link
    keeps these bytes; 20 MB at 10,000 projects are not copied and fsynced again), else a
    copy."""
    tmp = _temp_beside(backup)
    try:
        os.link(path, tmp)
    except OSError:
        atomic_write(backup, path.read_bytes())
        return
    try:
        os.replace(tmp, backup)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
    _fsync_dir(backup.parent)


# json's C encoder (json.dumps with an indent runs the pure-Python one: 0.92 s and ~150 MB of
# string pieces for a 10,000-project state, on every apply that changed something)
_ONE_LINE = json.JSONEncoder(ensure_ascii=False)


def state_text(doc: dict[str, Any], depth: int = 3) -> str:
    """``doc`` as state.json holds it: mappings indented (one space a level) down to each
    project's fields (``depth`` levels), every deeper value on one line.

    The same JSON as ``json.dumps(doc, indent=1, ensure_ascii=False)``, laid out so that a
    render changes a few whole lines of one project in a git diff, and written by the C
    encoder (a project's spec, its largest part, is one call).
    """
    out: list[str] = []
    encode = _ONE_LINE.encode

    def write(value: Any, level: int) -> None:
        if level < depth and isinstance(value, dict) and value:
            inner = "\n" + " " * (level + 1)
            sep = "{"
            for key, item in value.items():
                out.append(f"{sep}{inner}{encode(str(key))}: ")
                write(item, level + 1)
                sep = ","
            out.append("\n" + " " * level + "}")
        else:
            out.append(encode(value))

    write(doc, 0)
    return "".join(out)


def _drop_torn_tail(path: Path) -> None:
    """Cut a final line left half-written by a crash, so new lines start on a fresh line."""
    try:
        with open(path, "rb+") as fh:
            data = fh.read()
            if data and not data.endswith(b"\n"):
                fh.truncate(data.rfind(b"\n") + 1)
                fh.flush()
                os.fsync(fh.fileno())
    except FileNotFoundError:
        pass


class StateStore:
    """Loads, journals and snapshots the state in one directory. Thread-safe for ``record``."""

    def __init__(self, directory: Path, *, history: int = 10) -> None:
        self.dir = directory
        self.history = history
        self._journal: IO[str] | None = None
        self._mutex = threading.Lock()
        self.state: State | None = None
        self.pending_events = 0  # journaled events not yet folded into a snapshot
        # (key, (state, pending events), read cache written, not yet published): prefetch
        self._prefetched: tuple[Any, tuple[State, int], Path | None] | None = None

    # ----------------------------------------------------------------------- reading

    def _read_snapshot(self) -> State | None:
        path = self.dir / STATE_FILE
        backup = self.dir / BACKUP_FILE
        restore = (
            f"restore it from {backup} (cp {backup} {path}) or from git"
            if backup.exists()
            else "restore it from git (git checkout -- state/)"
        )
        if not path.exists():
            # Snapshots are replaced atomically, never removed: a backup or a journal that
            # continues a snapshot means state.json was lost, and starting over would
            # create and render every project a second time.
            if backup.exists() or (self._journal_start() or (None, 0))[1] > 0:
                raise StateCorruptError(
                    f"{path} is missing, but {self.dir} holds a state "
                    "(reconciler never starts over on its own)",
                    hint=restore,
                )
            return None
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            if not isinstance(data, dict):
                raise ValueError("not a JSON object")
            projects = data.get("projects")
            if not isinstance(projects, dict) or not all(
                isinstance(v, dict) for v in projects.values()
            ):
                raise ValueError("no 'projects' object of project entries")
            version = int(data.get("format_version", 0))
            if version > STATE_FORMAT_VERSION:
                raise StateError(
                    f"{path} has state format {version}, newer than this reconciler "
                    f"understands ({STATE_FORMAT_VERSION})",
                    hint="upgrade reconciler",
                )
            return State.from_json(data)
        except StateError:
            raise
        except (ValueError, KeyError, TypeError, UnicodeDecodeError) as exc:
            raise StateCorruptError(
                f"{path} is damaged and cannot be read ({exc})", hint=restore
            ) from None

    def _replay_journal(self, state: State) -> int:
        path = self.dir / JOURNAL_FILE
        if not path.exists():
            return 0
        lines = path.read_text(encoding="utf-8", errors="replace").split("\n")
        applied = 0
        for i, line in enumerate(lines):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except ValueError:
                if i >= len(lines) - 2:  # a torn final line: the crash hit mid-append
                    break
                raise self._damaged(path, i + 1, "not JSON") from None
            event = record.get("event") if isinstance(record, dict) else None
            if not isinstance(event, dict) or event.get("type") not in EVENT_TYPES:
                raise self._damaged(path, i + 1, "not a state event")
            if record.get("lineage") != state.lineage or record.get("base") != state.serial:
                continue  # belongs to an older snapshot that was already written
            try:
                apply_event(state, event, history=self.history)
            except (KeyError, TypeError, ValueError, AttributeError) as exc:
                raise self._damaged(path, i + 1, f"event missing {exc}") from None
            applied += 1
        return applied

    def _damaged(self, path: Path, line: int, why: str) -> StateCorruptError:
        return StateCorruptError(
            f"{path}:{line} is damaged ({why}); nothing was changed",
            hint=f"{self.dir / STATE_FILE} (the last snapshot) is intact and "
            f"{self.dir / BACKUP_FILE} holds the one before; the journal holds what "
            f"happened since: repair or delete line {line} by hand, or restore state/ "
            "from git. Do not delete the whole journal: it records renders already paid for",
        )

    def _journal_start(self) -> tuple[str, int] | None:
        """(lineage, base serial) of the journal's first line, if it is readable."""
        try:
            with open(self.dir / JOURNAL_FILE, encoding="utf-8") as fh:
                first = json.loads(fh.readline() or "{}")
        except (OSError, ValueError):
            return None
        if not isinstance(first, dict):
            return None
        lineage, base = first.get("lineage"), first.get("base")
        if not isinstance(lineage, str) or not isinstance(base, int):
            return None
        return lineage, base

    def _journal_lineage(self) -> str | None:
        """The lineage of a journal written before any snapshot existed (a crashed first run)."""
        start = self._journal_start()
        return start[0] if start is not None and start[1] == 0 else None

    def load(self) -> State:
        state = self._read_snapshot() or State(lineage=self._journal_lineage() or _new_lineage())
        self.pending_events = self._replay_journal(state)
        self.state = state
        return state

    def peek(self) -> State:
        """Load without keeping anything open: for read-only commands (through the read
        cache in ``cache/``, which only ever gives what ``load`` would; see state_cache)."""
        from reconciler.adapters.state_cache import peek

        return peek(self)

    def prefetch(self) -> None:
        """Read ahead for the next ``peek`` (which uses it only if no file changed since)."""
        from reconciler.adapters.state_cache import prefetch

        prefetch(self)

    def discard_prefetch(self) -> None:
        """Forget a ``prefetch`` no ``peek`` will use (the manifests were invalid, say)."""
        from reconciler.adapters.state_cache import discard

        discard(self)

    # ----------------------------------------------------------------------- writing

    def _ensure_dir(self) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        gi = self.dir / ".gitignore"
        if not gi.exists():
            atomic_write(gi, GITIGNORE.encode())

    def record(self, event: dict[str, Any]) -> None:
        """Apply an event and make it durable (fsynced journal line) before returning."""
        assert self.state is not None, "load() first"
        with self._mutex:
            if self._journal is None:
                self._ensure_dir()
                _drop_torn_tail(self.dir / JOURNAL_FILE)
                # Kept open across records: one fsync per event, no reopen cost.
                self._journal = open(self.dir / JOURNAL_FILE, "a", encoding="utf-8")  # noqa: SIM115
            line = json.dumps(
                {"lineage": self.state.lineage, "base": self.state.serial, "event": event},
                separators=(",", ":"),
                ensure_ascii=False,
            )
            self._journal.write(line + "\n")
            self._journal.flush()
            os.fsync(self._journal.fileno())
            apply_event(self.state, event, history=self.history)
            self.pending_events += 1

    def snapshot(self) -> None:
        """Fold the journal into a new snapshot (serial + 1), keeping the old one as backup."""
        assert self.state is not None, "load() first"
        with self._mutex:
            if not self.pending_events and (self.dir / STATE_FILE).exists():
                return
            self._ensure_dir()
            path = self.dir / STATE_FILE
            if path.exists():
                _keep_as_backup(path, self.dir / BACKUP_FILE)
            self.state.serial += 1
            atomic_write(path, (state_text(self.state.to_json()) + "\n").encode())
            if self._journal is not None:
                self._journal.close()
                self._journal = None
            # Old lines now carry a stale base serial; truncating is tidiness, not safety.
            atomic_write(self.dir / JOURNAL_FILE, b"")
            self.pending_events = 0

    def close(self) -> None:
        with self._mutex:
            if self._journal is not None:
                self._journal.close()
                self._journal = None


# --------------------------------------------------------------------------- locking


def _holder_info() -> dict[str, Any]:
    program = Path(sys.argv[0]).name if sys.argv and sys.argv[0] else "python"
    if program == "__main__.py":  # `python -m reconciler ...`: name the package
        program = Path(sys.argv[0]).parent.name
    return {
        "pid": os.getpid(),
        "host": _hostname(),
        "command": " ".join([program, *sys.argv[1:6]])[:200],
        "since": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }


def describe_holder(holder: dict[str, Any]) -> str:
    if not holder:
        return "an unknown process"
    return (
        f"pid {holder.get('pid')} on {holder.get('host')} running "
        f"`{holder.get('command')}` since {holder.get('since')}"
    )


def read_holder(directory: Path) -> dict[str, Any]:
    try:
        data = json.loads((directory / LOCK_FILE).read_text(encoding="utf-8") or "{}")
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


@contextlib.contextmanager
def state_lock(
    directory: Path, *, timeout: float = 5.0, poll: float = 0.05
) -> Iterator[dict[str, Any]]:
    """Advisory flock on ``state/.lock``; the kernel drops it if the holder dies."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / LOCK_FILE
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    deadline = time.monotonic() + timeout
    try:
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    holder = read_holder(directory)
                    raise LockHeldError(
                        f"the state in {directory} is locked by {describe_holder(holder)}",
                        holder=holder,
                    ) from None
                time.sleep(poll)
        info = _holder_info()
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps(info).encode(), 0)
        # Temp files of a writer killed mid-write: with the lock held nobody else is writing.
        for stale in directory.glob(".*.tmp"):
            with contextlib.suppress(OSError):
                stale.unlink()
        try:
            yield info
        finally:
            os.ftruncate(fd, 0)
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


def clear_lock(directory: Path, *, force: bool = False) -> tuple[str, dict[str, Any]]:
    """``state unlock``: what was done ("free", "stale" or "forced") and the recorded holder.

    A lock whose holder died is free already (the kernel dropped the flock); only its holder
    record is left, and it is wiped. A lock still held is removed only with ``force`` (a
    holder that hangs, or runs on another machine): the holder then excludes nobody.
    """
    path = directory / LOCK_FILE
    holder = read_holder(directory)
    try:
        fd = os.open(path, os.O_RDWR)
    except FileNotFoundError:
        return "free", {}
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            if not force:
                raise StateError(
                    f"the state in {directory} is locked by {describe_holder(holder)}, "
                    "which is still running",
                    hint="let it finish or stop it; `state unlock --force` removes the lock "
                    "anyway (only for a holder that hangs or runs on another machine)",
                ) from None
            path.unlink(missing_ok=True)
            return "forced", holder
        os.ftruncate(fd, 0)
        fcntl.flock(fd, fcntl.LOCK_UN)
        return ("stale" if holder else "free"), holder
    finally:
        os.close(fd)


def _new_lineage() -> str:
    import uuid  # here, not at the top: a read-only run never needs uuid or socket

    return str(uuid.uuid4())


def _hostname() -> str:
    import socket

    return socket.gethostname()
