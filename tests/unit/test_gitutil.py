"""gitutil.replace_work_tree against a real git repository: exact trees, minimal rewrites."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from reconciler.triggers import gitutil


class Repo:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("GIT_")},
            "GIT_AUTHOR_NAME": "t",
            "GIT_AUTHOR_EMAIL": "t@example.com",
            "GIT_COMMITTER_NAME": "t",
            "GIT_COMMITTER_EMAIL": "t@example.com",
            "GIT_CONFIG_NOSYSTEM": "1",
        }
        root.mkdir(parents=True)
        self.git("init", "-q", "-b", "main")

    def git(self, *args: str) -> str:
        return subprocess.run(
            ["git", "-C", str(self.root), *args],
            check=True,
            capture_output=True,
            text=True,
            env=self.env,
        ).stdout.strip()

    def commit(self, files: dict[str, str | None]) -> str:
        for name, text in files.items():
            path = self.root / name
            if text is None:
                path.unlink()
            else:
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_text(text)
        self.git("add", "-A")
        self.git("commit", "-qm", "c")
        return self.git("rev-parse", "HEAD")


@pytest.fixture
def repo(tmp_path: Path) -> Repo:
    return Repo(tmp_path / "src")


def tree(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): p.read_text() for p in sorted(root.rglob("*")) if p.is_file()}


def test_only_the_files_a_commit_changed_are_rewritten(repo: Repo, tmp_path: Path) -> None:
    work = tmp_path / "hook" / "work"
    first = repo.commit({"m/a.yaml": "a", "m/b.yaml": "b", "m/sub/c.yaml": "c"})
    gitutil.replace_work_tree(repo.root / ".git", first, work)
    assert tree(work) == {"m/a.yaml": "a", "m/b.yaml": "b", "m/sub/c.yaml": "c"}
    (work / "m" / "stray.yaml").write_text("not in any commit")
    (work / "m" / "b.yaml").write_text("edited in place")
    second = repo.commit({"m/a.yaml": "a2", "m/sub/c.yaml": None, "m/d.yaml": "d"})
    gitutil.replace_work_tree(repo.root / ".git", second, work)
    # exactly the commit: the edit undone, the stray file and the deleted one gone
    assert tree(work) == {"m/a.yaml": "a2", "m/b.yaml": "b", "m/d.yaml": "d"}
    third = repo.commit({"m/d.yaml": "d2"})
    untouched = (work / "m" / "b.yaml").stat()
    gitutil.replace_work_tree(repo.root / ".git", third, work)
    now = (work / "m" / "b.yaml").stat()
    assert (now.st_ino, now.st_ctime_ns, now.st_mtime_ns) == (
        untouched.st_ino,
        untouched.st_ctime_ns,
        untouched.st_mtime_ns,
    )
    # the repository itself is untouched: no index written, HEAD where it was
    assert repo.git("rev-parse", "HEAD") == third
    assert repo.git("status", "--porcelain") == ""


def test_without_its_index_the_work_tree_is_rebuilt_from_scratch(
    repo: Repo, tmp_path: Path
) -> None:
    work = tmp_path / "work"
    (work / "m").mkdir(parents=True)
    (work / "m" / "left-over.yaml").write_text("from an older reconciler")
    sha = repo.commit({"m/a.yaml": "a"})
    gitutil.replace_work_tree(repo.root / ".git", sha, work)
    assert tree(work) == {"m/a.yaml": "a"}


def test_a_symlink_leading_outside_is_refused_one_inside_is_kept(
    repo: Repo, tmp_path: Path
) -> None:
    work = tmp_path / "work"
    (repo.root / "m").mkdir(parents=True)
    os.symlink("a.yaml", repo.root / "m" / "alias.yaml")
    sha = repo.commit({"m/a.yaml": "a"})
    gitutil.replace_work_tree(repo.root / ".git", sha, work)
    assert (work / "m" / "alias.yaml").read_text() == "a"
    secret = tmp_path / "secret.yaml"
    secret.write_text("password: hunter2")
    os.symlink(secret, repo.root / "m" / "leak.yaml")
    sha = repo.commit({})
    with pytest.raises(gitutil.GitError, match=r"m/leak\.yaml .* leads outside"):
        gitutil.replace_work_tree(repo.root / ".git", sha, work)
