"""Crash harness: ``kill -9`` a real ``reconciler apply`` at random and at the worst instants,
then prove that nothing was rendered twice, nothing was forgotten and nothing was orphaned.

Each trial changes a catalogue of 10-20 projects (Timeline edits, produceConfig- or
mediaMetadata-only edits, retitles, userData, new and removed projects), runs ``python -m
reconciler apply`` as a subprocess against an emulator server in this process (with latency),
and kills it with SIGKILL, either at a random instant or aimed at one of the worst moments:

    after-add         AddEditingProject processed, its answer lost (the ProjectId unknown)
    after-created     the ``created`` event is in the journal, the first render not yet done
    produce-inflight  VOD received a ProduceEditingProjectVideo and processes it; no answer
    produce-lost      the ProduceEditingProjectVideo never reaches VOD (intent journaled)
    state-write       a state file is being written (a ``*.tmp`` of the atomic write exists)

After each kill ``reconciler status`` must load the state, and the next (unkilled) apply must
complete. Then the emulator's call log must show: no duplicate (two successful renders of one
project with the same Timeline + ProduceConfig + MediaMetadata: every spec the harness writes
is new), no lost render (each project's last render is its current spec and VOD's Timeline
equals the manifest's) and no orphan (every VOD project is in the state).

    python bench/crash.py --trials 50 [--seed 1] [--keep DIR] [--json]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from reconciler.adapters.emulator import Emulator, EmulatorConfig, EmulatorServer  # noqa: E402
from reconciler.adapters.emulator.auth import Headers, Request  # noqa: E402
from reconciler.adapters.emulator.service import EmulatorResponse  # noqa: E402
from reconciler.adapters.state import StateStore  # noqa: E402
from reconciler.core.canonical import canonical_json, canonicalize  # noqa: E402

ACCESS = ("LTAIcrashharness0000", "crash-harness-secret-value-0000")
MODES = ("random", "after-add", "after-created", "produce-inflight", "produce-lost", "state-write")
AIMED = MODES[1:]
ADD, PRODUCE = "AddEditingProject", "ProduceEditingProjectVideo"
DEADLINE = 60.0  # seconds any one subprocess may take


# --------------------------------------------------------------------------- the catalogue


@dataclass
class Item:
    """One project of the catalogue; each counter is bumped by one kind of edit."""

    index: int
    timeline: int = 0
    produce: int = 0
    media: int = 0
    title: int = 0
    user: int = 0

    @property
    def name(self) -> str:
        return f"c-{self.index:02d}"

    def spec(self) -> dict[str, Any]:
        i = self.index
        return {
            "title": f"Crash {i:02d} r{self.title}",
            "timeline": {
                "VideoTracks": [
                    {
                        "VideoTrackClips": [
                            {
                                "MediaId": f"{i:02d}" + "a" * 30,
                                "In": 0,
                                "Out": 5 + self.timeline / 10,
                            },
                            {"MediaId": f"{i:02d}" + "b" * 30, "In": 1, "Out": 4},
                        ]
                    }
                ]
            },
            "produceConfig": {"TemplateGroupId": "crash", "Width": 1280 + self.produce},
            "mediaMetadata": {"Title": f"Crash {i:02d} m{self.media}"},
            "userData": {"Extend": {"u": self.user}},
        }

    def write(self, manifests: Path) -> None:
        doc = {
            "apiVersion": "reconciler/v1",
            "kind": "EditingProject",
            "metadata": {"name": self.name, "labels": {"bench": "crash"}},
            "spec": self.spec(),
        }
        (manifests / f"{self.name}.yaml").write_text(json.dumps(doc, indent=2))  # JSON is YAML


EDITS = (("timeline", 35), ("produce", 25), ("media", 10), ("title", 15), ("user", 15))


def render_key(timeline: Any, produce_config: Any, media_metadata: Any) -> str:
    """What one render paid for; a second successful render of the same key is a duplicate."""
    doc = {"Timeline": timeline, "ProduceConfig": produce_config, "MediaMetadata": media_metadata}
    return canonical_json(doc)


# --------------------------------------------------------------------------- the emulator


@dataclass
class Trap:
    """Kill ``pid`` at the ``nth`` request for ``action``: before or after VOD processes it,
    or instead of processing it (``process=False``: the request is lost on the way)."""

    action: str
    nth: int
    before: bool
    process: bool
    pid: int = 0
    seen: int = 0
    fired: bool = False


class KillingEmulator(Emulator):
    """The emulator with one trap: the harness arms it for a run, the server springs it."""

    trap: Trap | None = None
    _trap_lock = threading.Lock()

    def handle(
        self,
        method: str,
        path: str,
        query: Sequence[tuple[str, str]],
        headers: Headers,
        body: bytes = b"",
    ) -> EmulatorResponse:
        trap = self.trap
        if trap is None or path.startswith("/_emulator"):
            return super().handle(method, path, query, headers, body)
        action = Request.build(method, path, query, headers, body).action
        with self._trap_lock:
            spring = action == trap.action and not trap.fired
            if spring:
                trap.seen += 1
                spring = trap.fired = trap.seen == trap.nth
        if not spring:
            return super().handle(method, path, query, headers, body)
        if trap.before:
            _kill(trap.pid)
        if trap.process:
            answer = super().handle(method, path, query, headers, body)
        else:
            answer = EmulatorResponse(0, [], b"")
        if not trap.before:
            _kill(trap.pid)
        answer.drop = True  # the client is gone: close the socket, write nothing
        return answer


def _kill(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)


# --------------------------------------------------------------------------- the harness


@dataclass
class Report:
    trials: int = 0
    kills: Counter[str] = field(default_factory=Counter)  # mode -> kills delivered
    aimed: Counter[str] = field(default_factory=Counter)  # mode -> trials that aimed at it
    missed: Counter[str] = field(default_factory=Counter)  # mode -> no kill (run ended first)
    tmp_left: int = 0  # kills that left a half-written *.tmp behind (mid atomic write)
    loaded: int = 0  # states that loaded after a kill
    recovered: int = 0  # next applies that completed
    settled_renders: int = 0  # interrupted renders recorded from VOD, not paid again
    settled_creates: int = 0  # interrupted creates found by title, not created again
    duplicates: list[str] = field(default_factory=list)
    lost: list[str] = field(default_factory=list)
    orphans: list[str] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)  # anything else that went wrong
    calls: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return not (self.duplicates or self.lost or self.orphans or self.failures)

    def as_dict(self) -> dict[str, Any]:
        return {
            "trials": self.trials,
            "kills": sum(self.kills.values()),
            "kills_by_mode": dict(self.kills),
            "aimed_by_mode": dict(self.aimed),
            "runs_that_ended_before_the_kill": dict(self.missed),
            "kills_mid_atomic_write": self.tmp_left,
            "states_loaded_after_kill": self.loaded,
            "next_applies_completed": self.recovered,
            "renders_settled_by_verification": self.settled_renders,
            "creates_settled_by_search": self.settled_creates,
            "duplicates": len(self.duplicates),
            "lost_renders": len(self.lost),
            "orphans": len(self.orphans),
            "other_failures": self.failures,
            "api_calls": self.calls,
            "seconds": round(self.seconds, 1),
        }


class Harness:
    def __init__(
        self,
        root: Path,
        *,
        seed: int = 1,
        projects: int = 10,
        max_projects: int = 20,
        latency: float = 0.02,
        verbose: bool = False,
    ) -> None:
        self.root = root
        self.manifests = root / "manifests"
        self.state = root / "state"
        self.manifests.mkdir(parents=True, exist_ok=True)
        self.rng = random.Random(seed)
        self.max_projects = max_projects
        self.verbose = verbose
        self.items = [Item(i) for i in range(projects)]
        self.next_index = projects
        config = EmulatorConfig(latency=latency, latency_jitter=latency, produce_delay=0.5)
        self.emulator = KillingEmulator(None, dict([ACCESS]), config)
        self.server = EmulatorServer(self.emulator).start()
        self.report = Report()
        self.apply_seconds = 1.0  # how long an unkilled apply takes (random kills land inside)
        self.lost_seen: set[tuple[str, str]] = set()
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("RECONCILER_")}
        self.env |= {
            "ALIBABA_CLOUD_ACCESS_KEY_ID": ACCESS[0],
            "ALIBABA_CLOUD_ACCESS_KEY_SECRET": ACCESS[1],
            "PYTHONPATH": str(ROOT),
        }

    def close(self) -> None:
        self.server.stop()
        self.emulator.close()

    # ----------------------------------------------------------------------- processes

    def _command(self, verb: str, *more: str) -> list[str]:
        base = [sys.executable, "-m", "reconciler", verb, "--state", str(self.state)]
        if verb == "status":
            return [*base, *more]
        return [
            *base,
            "--manifests",
            str(self.manifests),
            "--endpoint",
            self.server.url,
            "--signature",
            "v3",
            "--parallelism",
            "4",
            "--qps",
            "200",
            *more,
        ]

    def _run(self, verb: str, *more: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            self._command(verb, *more),
            cwd=self.root,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=DEADLINE,
            check=False,
        )

    def log(self, text: str) -> None:
        if self.verbose:
            print(text, file=sys.stderr, flush=True)

    # ----------------------------------------------------------------------- one trial

    def _edit(self, mode: str) -> list[str]:
        """Change the catalogue for one trial; returns what changed."""
        changed: list[str] = []
        if mode in ("after-add", "after-created") or (mode == "random" and self.rng.random() < 0.3):
            item = Item(self.next_index)
            self.next_index += 1
            self.items.append(item)
            changed.append(f"+{item.name}")
            if len(self.items) > self.max_projects:  # removed: the state keeps it, orphaned
                gone = self.items.pop(0)
                (self.manifests / f"{gone.name}.yaml").unlink()
                changed.append(f"-{gone.name}")
        old = [i for i in self.items if f"+{i.name}" not in changed]
        for item in self.rng.sample(old, k=min(len(old), self.rng.randint(2, 5))):
            kind = self.rng.choices([e[0] for e in EDITS], [e[1] for e in EDITS])[0]
            setattr(item, kind, getattr(item, kind) + 1)
            changed.append(f"{item.name}:{kind}")
        for item in self.items:
            item.write(self.manifests)
        return changed

    def _renders_expected(self, changed: list[str]) -> int:
        return sum(1 for c in changed if c.startswith("+") or c.split(":")[-1] in RENDERING)

    def _arm(self, mode: str, changed: list[str]) -> Trap | None:
        if mode == "after-add":
            return Trap(ADD, 1, before=False, process=True)
        produces = max(1, self._renders_expected(changed))
        nth = self.rng.randint(1, produces)
        if mode == "produce-inflight":
            return Trap(PRODUCE, nth, before=True, process=True)
        if mode == "produce-lost":
            return Trap(PRODUCE, nth, before=True, process=False)
        return None

    def _watch(self, proc: subprocess.Popen[str], mode: str) -> bool:
        """Kill ``proc`` when the mode's moment comes (polled); True if it was killed."""
        journal = self.state / "journal.jsonl"
        due = time.monotonic() + self.rng.uniform(0.2, max(0.3, self.apply_seconds))
        deadline = time.monotonic() + DEADLINE
        while proc.poll() is None and time.monotonic() < deadline:
            if mode == "random" and time.monotonic() >= due:
                _kill(proc.pid)
                return True
            if mode == "after-created":
                with contextlib.suppress(OSError):
                    if b'"type":"created"' in journal.read_bytes():
                        _kill(proc.pid)
                        return True
            if mode == "state-write":
                with contextlib.suppress(OSError):
                    if any(n.endswith(".tmp") for n in os.listdir(self.state)):
                        _kill(proc.pid)
                        return True
            time.sleep(0.0002 if mode == "state-write" else 0.002)
        return False

    def trial(self, number: int, mode: str) -> None:
        report = self.report
        report.trials += 1
        report.aimed[mode] += 1
        changed = self._edit(mode)
        trap = self._arm(mode, changed)
        tmp_before = set(self.state.glob(".*.tmp"))
        proc = subprocess.Popen(
            self._command("apply"),
            cwd=self.root,
            env=self.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        if trap is not None:
            trap.pid = proc.pid
            self.emulator.trap = trap
        try:
            self._watch(proc, mode)
            _, err = proc.communicate(timeout=DEADLINE)
        finally:
            self.emulator.trap = None
        killed = proc.returncode == -signal.SIGKILL
        if killed:
            report.kills[mode] += 1
        else:
            report.missed[mode] += 1
            if proc.returncode not in (0, 1):
                report.failures.append(f"trial {number}: apply exited {proc.returncode}: {err}")
        leftovers = sorted(p.name for p in set(self.state.glob(".*.tmp")) - tmp_before)
        if killed and leftovers:
            report.tmp_left += 1
        self.log(f"trial {number:3d} {mode:17s} killed={killed!s:5} changed={changed} {leftovers}")

        # The state loads after the kill, and the next run completes.
        status = self._run("status")
        try:
            StateStore(self.state).load()
            assert status.returncode == 0, status.stderr
            report.loaded += 1
        except Exception as exc:
            report.failures.append(f"trial {number}: state does not load after {mode}: {exc}")
            return
        started = time.monotonic()
        recovery = self._run("apply")
        self.apply_seconds = time.monotonic() - started
        if recovery.returncode != 0:
            report.failures.append(
                f"trial {number}: the apply after the kill exited {recovery.returncode}: "
                f"{recovery.stderr.strip()[-800:]}"
            )
            return
        report.recovered += 1
        report.settled_renders += recovery.stdout.count("render had reached VOD")
        report.settled_creates += recovery.stdout.count("an interrupted run had created")
        self.check(number)

    # ----------------------------------------------------------------------- invariants

    def check(self, number: int) -> None:
        """Everything converged: nothing twice, nothing lost, nothing orphaned."""
        report = self.report
        state = StateStore(self.state).load().projects
        renders: Counter[str] = Counter()
        last: dict[str, str] = {}
        for call in self.emulator.calls(PRODUCE):
            if call.status != 200:
                continue
            p = call.params
            key = render_key(
                *(
                    json.loads(p.get(k) or "null")
                    for k in ("Timeline", "ProduceConfig", "MediaMetadata")
                )
            )
            renders[f"{p['ProjectId']} {key}"] += 1
            last[p["ProjectId"]] = key
        seen = {d.split(" ", 1)[0] for d in report.duplicates}
        for what, n in renders.items():
            if n > 1 and what.split(" ", 1)[0] not in seen:
                report.duplicates.append(f"{what} rendered {n} times (trial {number})")
        remote = {p.project_id: p for p in self.emulator.projects()}
        for item in self.items:
            entry = state.get(item.name) or {}
            pid = entry.get("project_id")
            spec = item.spec()
            want = render_key(spec["timeline"], spec["produceConfig"], spec["mediaMetadata"])
            problems = []
            if not pid or pid not in remote:
                problems.append("no project")
            else:
                if last.get(pid) != want:
                    problems.append("its last render is not the current spec")
                project = remote[pid]
                if canonicalize(json.loads(project.timeline or "null")) != canonicalize(
                    spec["timeline"]
                ):
                    problems.append("VOD's Timeline differs from the manifest")
                if project.title != spec["title"]:
                    problems.append("VOD's title differs from the manifest")
            if entry.get("pending") or entry.get("failed"):
                problems.append(f"state not settled: {entry.get('pending') or entry.get('failed')}")
            if problems and (item.name, want) not in self.lost_seen:  # each loss once
                self.lost_seen.add((item.name, want))
                report.lost.append(f"trial {number}: {item.name}: {'; '.join(problems)}")
        known = {e.get("project_id") for e in state.values()}
        for pid, project in remote.items():
            if pid not in known and not any(pid in o for o in report.orphans):
                report.orphans.append(f"trial {number}: {pid} ({project.title}) not in the state")

    def run(self, trials: int) -> Report:
        started = time.monotonic()
        for item in self.items:
            item.write(self.manifests)
        first = self._run("apply")
        if first.returncode != 0:
            raise SystemExit(f"the initial apply failed: {first.stderr}")
        modes = list(MODES)
        for number in range(1, trials + 1):
            if (number - 1) % len(modes) == 0:
                self.rng.shuffle(modes)
            self.trial(number, modes[(number - 1) % len(modes)])
        final = self._run("apply")
        before = len(self.emulator.calls())
        if final.returncode != 0 or before != len(self.emulator.calls()):
            self.report.failures.append(f"the final apply was not a no-op: {final.stdout}")
        self.report.calls = dict(sorted(Counter(c.action for c in self.emulator.calls()).items()))
        self.report.seconds = time.monotonic() - started
        return self.report


RENDERING = ("timeline", "produce", "media")


def summary(report: Report) -> str:
    d = report.as_dict()
    kills = ", ".join(f"{m} {report.kills[m]}/{report.aimed[m]}" for m in MODES)
    return "\n".join(
        [
            f"trials: {d['trials']} in {d['seconds']} s; kills delivered: {d['kills']} ({kills})",
            f"  aimed kills: {sum(report.kills[m] for m in AIMED)}; kills mid atomic write "
            f"(a *.tmp left behind): {d['kills_mid_atomic_write']}",
            f"  states loaded after a kill: {d['states_loaded_after_kill']}/{d['trials']}; "
            f"next applies completed: {d['next_applies_completed']}/{d['trials']}",
            f"  settled by asking VOD: {d['renders_settled_by_verification']} renders recorded "
            f"(not paid again), {d['creates_settled_by_search']} creates found by title",
            f"  API calls: {d['api_calls']}",
            f"duplicates: {d['duplicates']}  lost renders: {d['lost_renders']}  "
            f"orphans: {d['orphans']}  other failures: {len(report.failures)}",
            *[f"  DUPLICATE {x}" for x in report.duplicates],
            *[f"  LOST {x}" for x in report.lost],
            *[f"  ORPHAN {x}" for x in report.orphans],
            *[f"  FAILURE {x}" for x in report.failures],
        ]
    )


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--trials", type=int, default=50)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--projects", type=int, default=10, help="catalogue size at the start")
    ap.add_argument("--max-projects", type=int, default=20)
    ap.add_argument("--latency", type=float, default=0.02, help="emulator latency (+ jitter)")
    ap.add_argument("--keep", type=Path, help="work in this directory and keep it")
    ap.add_argument("--json", action="store_true", help="print the report as JSON")
    ap.add_argument("-v", "--verbose", action="store_true", help="one line per trial")
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="reconciler-crash-") as tmp:
        root = args.keep or Path(tmp)
        harness = Harness(
            root,
            seed=args.seed,
            projects=args.projects,
            max_projects=args.max_projects,
            latency=args.latency,
            verbose=args.verbose,
        )
        try:
            report = harness.run(args.trials)
        finally:
            harness.close()
    print(json.dumps(report.as_dict(), indent=2) if args.json else summary(report))
    return 0 if report.ok else 1


if __name__ == "__main__":
    sys.exit(main())
