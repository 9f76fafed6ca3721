"""What the pre-push hook costs a push of one edit to a large catalogue (not an issue target).

    python bench/prepush.py                 # N=10,000, 5 pushes
    python bench/prepush.py --n 1000 --runs 3

A git clone holding N synthetic manifests (bench/gen.py) and a state in sync, as a team that
commits its state back from CI has. Each push edits one manifest, commits, and runs the hook
as git would (``python -m reconciler hooks run pre-push`` with the ref line on stdin), timed
from spawn to exit. The first push checks the whole commit out into the hook's tree and
parses it cold; the median of the others is what a push costs from then on.
"""

from __future__ import annotations

import argparse
import random
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from gen import Catalogue
from proc import check, clean_env, measure, median, reconciler
from statesync import sync_state

GIT_ENV = {
    "GIT_AUTHOR_NAME": "Bench",
    "GIT_AUTHOR_EMAIL": "bench@example.com",
    "GIT_COMMITTER_NAME": "Bench",
    "GIT_COMMITTER_EMAIL": "bench@example.com",
    "GIT_CONFIG_NOSYSTEM": "1",
}


def git(clone: Path, *args: str) -> str:
    env = clean_env(GIT_ENV)
    proc = subprocess.run(
        ["git", *args], cwd=clone, env=env, capture_output=True, text=True, check=True
    )
    return proc.stdout.strip()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=10_000, help="catalogue size (default 10,000)")
    parser.add_argument("--runs", type=int, default=5, help="pushes after the first (default 5)")
    parser.add_argument("--workdir", type=Path, help="keep the clone here (default: a temp dir)")
    args = parser.parse_args(argv)
    work = args.workdir or Path(tempfile.mkdtemp(prefix="reconciler-prepush-"))
    clone = work / f"clone{args.n}"
    shutil.rmtree(clone, ignore_errors=True)
    clone.mkdir(parents=True)
    print(f"== N = {args.n:,}: a clone with the catalogue and a state in sync ...", flush=True)
    catalogue = Catalogue(clone / "manifests", args.n)
    catalogue.write()
    sync_state((clone / "manifests").absolute(), clone / "state")
    git(clone, "init", "-q", "-b", "main")
    git(clone, "add", "manifests")
    git(clone, "commit", "-q", "-m", "catalogue")
    rng = random.Random(args.n)
    times = []
    for i in range(args.runs + 1):
        catalogue.edit([rng.choice(catalogue.projects)])
        git(clone, "commit", "-q", "-a", "-m", f"edit {i}")
        sha = git(clone, "rev-parse", "HEAD")
        line = f"refs/heads/main {sha} refs/heads/main {'0' * 40}\n"
        with tempfile.NamedTemporaryFile("w+", suffix=".txt") as stdin:
            stdin.write(line)
            stdin.flush()
            cmd = [
                "sh",
                "-c",
                f'exec "$@" < {stdin.name}',
                "-",
                *reconciler("hooks", "run", "pre-push"),
            ]
            run = check(measure(cmd, cwd=clone), "pre-push")
        assert f" {i + 1} to render" in run.out, run.out[-2000:]  # the state stays behind
        times.append(run.seconds)
        what = "first push (checkout + cold plan)" if i == 0 else f"push {i}"
        print(f"{what}: {run.seconds:.3f}s, peak RSS {run.rss_mb:.0f} MB", flush=True)
    print(f"\npre-push of one edit at N={args.n:,}: first {times[0]:.3f}s, ", end="")
    print(f"then median {median(times[1:]):.3f}s over {args.runs}")
    if args.workdir is None:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
