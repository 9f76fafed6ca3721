"""The git push triggers with real git: post-receive applies pushes, pre-push validates/plans."""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from reconciler.adapters.emulator import Emulator
from reconciler.cli.main import main

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = REPO / "manifests"
PRODUCE = "ProduceEditingProjectVideo"

pytestmark = pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")


@dataclass
class Remote:
    """A bare 'server' repository with the hook installed, and one clone of it."""

    root: Path
    env: dict[str, str]

    @property
    def bare(self) -> Path:
        return self.root / "server.git"

    @property
    def clone(self) -> Path:
        return self.root / "clone"

    @property
    def server_state(self) -> Path:
        return self.bare / "reconciler" / "state"

    def git(
        self, *args: str, cwd: Path | None = None, check: bool = True, **env: str
    ) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run(
            ["git", *args],
            cwd=cwd or self.clone,
            env={**self.env, **env},
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        if check and proc.returncode != 0:
            raise AssertionError(f"git {' '.join(args)} failed:\n{proc.stdout}\n{proc.stderr}")
        return proc

    def commit(self, message: str) -> None:
        self.git("add", "-A")
        self.git("commit", "-q", "-m", message)

    def push(self, check: bool = True) -> subprocess.CompletedProcess[str]:
        return self.git("push", "origin", "main", check=check)

    def produce_calls(self) -> list[str]:
        """ProjectIds of every render the server-side (embedded) emulator received."""
        if not (self.server_state / "emulator").exists():
            return []
        emulator = Emulator.embedded(self.server_state)
        try:
            return [c.params.get("ProjectId", "") for c in emulator.calls() if c.action == PRODUCE]
        finally:
            emulator.close()

    def project_id(self, name: str) -> str:
        state = json.loads((self.server_state / "state.json").read_text())
        project_id: str = state["projects"][name]["project_id"]
        return project_id


@pytest.fixture
def remote(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Remote]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("GIT_", "RECONCILER_", "ALIBABA_CLOUD_"))
    }
    env.update(
        HOME=str(tmp_path / "home"),
        GIT_CONFIG_NOSYSTEM="1",
        GIT_AUTHOR_NAME="Ann Author",
        GIT_AUTHOR_EMAIL="ann@example.com",
        GIT_COMMITTER_NAME="Ann Author",
        GIT_COMMITTER_EMAIL="ann@example.com",
        GIT_TERMINAL_PROMPT="0",
        # The hook runs in the environment of the push: use the embedded emulator, with its
        # data under the server-side state directory.
        RECONCILER_ENDPOINT="emulator",
    )
    (tmp_path / "home").mkdir()
    for var in ("RECONCILER_ENDPOINT", "RECONCILER_STATE", "RECONCILER_MANIFESTS"):
        monkeypatch.delenv(var, raising=False)
    r = Remote(tmp_path, env)
    r.git("init", "-q", "--bare", "-b", "main", str(r.bare), cwd=tmp_path)
    r.git("clone", "-q", str(r.bare), str(r.clone), cwd=tmp_path)
    r.git("symbolic-ref", "HEAD", "refs/heads/main")
    yield r


def add_examples(r: Remote, *names: str) -> None:
    (r.clone / "manifests").mkdir(exist_ok=True)
    for name in names:
        shutil.copy(EXAMPLES / name, r.clone / "manifests" / Path(name).name)


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text, f"{old!r} not in {path}"
    path.write_text(text.replace(old, new, 1))


def remote_lines(proc: subprocess.CompletedProcess[str]) -> list[str]:
    return [
        line[len("remote: ") :].rstrip()
        for line in proc.stderr.splitlines()
        if line.startswith("remote: ")
    ]


def test_push_renders_exactly_the_changed_projects(remote: Remote) -> None:
    assert main(["hooks", "install", "--bare", str(remote.bare)]) == 0
    add_examples(remote, "brand-sting.yaml", "campaigns/spring-promo.yaml")
    remote.commit("two projects")
    first = remote.push()
    assert len(remote.produce_calls()) == 2
    shown = remote_lines(first)
    assert any(line.startswith("reconciler: applying main at ") for line in shown), shown
    assert any("2 created" in line for line in shown), shown

    edit(remote.clone / "manifests" / "spring-promo.yaml", "Out: 12", "Out: 13")
    remote.commit("trim the first clip")
    second = remote.push()
    calls = remote.produce_calls()
    assert len(calls) == 3
    assert calls[-1] == remote.project_id("spring-promo")
    assert any("1 rendered" in line for line in remote_lines(second))

    (remote.clone / "README.md").write_text("unrelated\n")
    remote.commit("docs only")
    third = remote.push()
    assert len(remote.produce_calls()) == 3
    assert any("0 rendered" in line for line in remote_lines(third))
    # The work tree is an exact export of the pushed commit, and HEAD of the bare repo is intact.
    assert (remote.bare / "reconciler" / "work" / "README.md").read_text() == "unrelated\n"
    head = remote.git("symbolic-ref", "HEAD", cwd=remote.bare).stdout.strip()
    assert head == "refs/heads/main"


def test_a_failing_apply_never_rejects_the_push(remote: Remote) -> None:
    assert main(["hooks", "install", "--bare", str(remote.bare)]) == 0
    add_examples(remote, "brand-sting.yaml")
    (remote.clone / "manifests" / "broken.yaml").write_text(
        "apiVersion: reconciler/v1\nkind: EditingProject\nmetadata: {name: broken}\n"
        "spec:\n  title: Broken\n  timeline: {VideoTracks: [{VideoTrackClips: [{In: 0}]}]}\n"
    )
    remote.commit("one broken manifest")
    proc = remote.push()
    assert proc.returncode == 0
    shown = "\n".join(remote_lines(proc))
    assert "manifests/broken.yaml:6:" in shown
    assert "APPLY FAILED" in shown and "push itself was accepted" in shown
    local = remote.git("rev-parse", "HEAD").stdout
    assert remote.git("rev-parse", "main", cwd=remote.bare).stdout == local
    assert remote.produce_calls() == []  # nothing applied from an invalid set


def test_foreign_hook_is_chained_and_restored(remote: Remote) -> None:
    hooks = remote.bare / "hooks"
    seen = remote.root / "foreign-saw.txt"
    foreign = f"#!/bin/sh\ncat > '{seen}'\necho foreign hook ran\n"
    (hooks / "post-receive").write_text(foreign)
    (hooks / "post-receive").chmod(0o755)

    assert main(["hooks", "install", "--bare", str(remote.bare)]) == 0
    ours = (hooks / "post-receive").read_text()
    assert "# reconciler-hook: post-receive" in ours
    assert (hooks / "post-receive.local").read_text() == foreign
    assert main(["hooks", "install", "--bare", str(remote.bare)]) == 0  # idempotent
    assert (hooks / "post-receive").read_text() == ours
    assert (hooks / "post-receive.local").read_text() == foreign

    add_examples(remote, "brand-sting.yaml")
    remote.commit("one project")
    proc = remote.push()
    sha = remote.git("rev-parse", "HEAD").stdout.strip()
    # Both hooks saw the same ref line on stdin, and both outputs reached the pusher.
    assert seen.read_text().split() == ["0" * 40, sha, "refs/heads/main"]
    assert "foreign hook ran" in remote_lines(proc)
    assert len(remote.produce_calls()) == 1

    assert main(["hooks", "uninstall", "--bare", str(remote.bare)]) == 0
    assert (hooks / "post-receive").read_text() == foreign
    assert not (hooks / "post-receive.local").exists()
    assert main(["hooks", "uninstall", "--bare", str(remote.bare)]) == 0  # foreign: left alone
    assert (hooks / "post-receive").read_text() == foreign


def test_pre_push_blocks_invalid_commits_and_lets_pending_changes_through(
    remote: Remote, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(remote.clone)
    assert main(["hooks", "install", "--pre-push"]) == 0
    assert "pre-push" in capsys.readouterr().out
    add_examples(remote, "brand-sting.yaml")
    sting = remote.clone / "manifests" / "brand-sting.yaml"
    edit(sting, "apiVersion: reconciler/v1", "apiVersion: reconciler/v1\nbogus: [")
    remote.commit("broken")
    edit(sting, "bogus: [", "# fixed in the working tree only")  # not committed
    blocked = remote.push(check=False)
    assert blocked.returncode != 0
    assert "manifests/brand-sting.yaml:" in blocked.stderr
    assert "push blocked" in blocked.stderr
    assert remote.git("branch", "--list", "main", cwd=remote.bare).stdout.strip() == ""

    remote.commit("fixed")
    edit(sting, "# fixed in the working tree only", "bogus: [")  # dirty, invalid, unpushed
    ok = remote.push(check=False)
    assert ok.returncode == 0, ok.stderr
    assert "1 to create" in ok.stdout + ok.stderr  # the pending change is shown, not blocking
    assert not (remote.clone / "state").exists()  # plan is offline: no state, no emulator

    assert main(["hooks", "uninstall", "--pre-push"]) == 0
    assert not (remote.clone / ".git" / "hooks" / "pre-push").exists()


def test_timeline_files_beside_the_manifests_directory_pass_both_hooks(
    remote: Remote, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The hooks' trees have no .git: the commit's whole tree is the repository there, as it
    is in the clone, so a timelineFile in ../timelines/ is accepted on both sides."""
    monkeypatch.chdir(remote.clone)
    assert main(["hooks", "install", "--pre-push", "--bare", str(remote.bare)]) == 0
    add_examples(remote, "recaps/weekly-recap.yaml")
    recap = remote.clone / "manifests" / "weekly-recap.yaml"
    edit(recap, "timelineFile: weekly-recap.timeline.json", "timelineFile: ../t/recap.json")
    (remote.clone / "t").mkdir()
    shutil.copy(EXAMPLES / "recaps" / "weekly-recap.timeline.json", remote.clone / "t/recap.json")
    assert main(["validate"]) == 0  # the clone: its .git marks the top
    remote.commit("a timeline beside the manifests")
    proc = remote.push()
    assert "points outside" not in proc.stdout + proc.stderr
    assert "1 to create" in proc.stdout + proc.stderr  # the pre-push plan
    assert any("1 created" in line for line in remote_lines(proc)), proc.stderr
    assert remote.produce_calls() == [remote.project_id("weekly-recap")]


def test_pre_push_parses_only_what_the_push_changed(
    remote: Remote, monkeypatch: pytest.MonkeyPatch, parses: list[str]
) -> None:
    """The hook checks each pushed commit out into its own tree, updated in place, with its
    own plan cache: a push parses the files it changed, and the clone's plan stays warm."""
    from reconciler.cli.hooks_cmd import pre_push

    parsed = parses
    monkeypatch.chdir(remote.clone)

    def push_check() -> list[str]:
        sha = remote.git("rev-parse", "HEAD").stdout.strip()
        parsed.clear()
        text = f"refs/heads/main {sha} refs/heads/main {'0' * 40}\n"
        assert pre_push(argparse.Namespace(state=None, manifests=None), text) == 0
        return sorted(parsed)

    def plan_here() -> list[str]:
        parsed.clear()
        assert main(["plan"]) == 0
        return sorted(parsed)

    add_examples(remote, "brand-sting.yaml", "campaigns/spring-promo.yaml", "tutorials/series.yaml")
    remote.commit("three files")
    everything = ["brand-sting.yaml", "series.yaml", "spring-promo.yaml"]
    assert push_check() == everything
    tree = remote.clone / ".git" / "reconciler" / "pre-push"
    assert sorted(p.name for p in (tree / "manifests").iterdir()) == everything
    assert remote.git("status", "--porcelain").stdout == ""  # nothing left in the clone
    assert plan_here() == everything  # no state here: a plan writes no cache

    assert push_check() == []  # the same commit again: all cached
    assert not (remote.clone / "state").exists()  # the cache is kept in .git/reconciler
    (remote.clone / "state").mkdir()  # a clone that keeps the state (CI commits it back)
    assert plan_here() == everything
    assert push_check() == everything  # the clone's state directory: a cache of the hook's own
    assert plan_here() == []
    edit(remote.clone / "manifests" / "spring-promo.yaml", "Out: 12", "Out: 13")
    (remote.clone / "manifests" / "brand-sting.yaml").unlink()
    remote.commit("one edit, one removal")
    assert push_check() == ["spring-promo.yaml"]
    assert not (tree / "manifests" / "brand-sting.yaml").exists()
    assert plan_here() == ["spring-promo.yaml"]  # the hook did not evict the clone's cache
    assert plan_here() == []
    assert main(["hooks", "uninstall", "--pre-push"]) == 0
    assert not tree.parent.exists()  # its tree and cache leave with it
