"""`reconciler hooks`: install/uninstall the git push triggers, and run them (`hooks run`).

``--bare REPO`` installs a post-receive hook that applies each push to the branch from a
checkout of the pushed commit (work directory and state inside the bare repository by
default). ``--pre-push`` installs a pre-push hook in the current clone that validates and
plans the commits being pushed, each checked out in a tree of the hook's own inside the
clone's git directory: invalid manifests block the push, pending changes do not."""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import sys
import traceback
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from reconciler.adapters.config import resolve_settings
from reconciler.adapters.state import state_lock
from reconciler.cli.main import EXIT_ERROR, EXIT_OK, main, render_error
from reconciler.errors import ReconcilerError
from reconciler.triggers import gitutil
from reconciler.triggers.hooks import HookError, install_hook, run_chained, uninstall_hook

HOOK_LOCK_TIMEOUT = 900.0  # a push waits this long for the previous push's apply


def register(sub: Any) -> None:
    p: argparse.ArgumentParser = sub.add_parser(
        "hooks",
        help="install or remove the git push triggers",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    verbs = p.add_subparsers(dest="hooks_verb", metavar="VERB")
    verbs.required = True
    for verb, text in (
        ("install", "install the hooks"),
        ("uninstall", "remove only what install wrote"),
    ):
        v = verbs.add_parser(verb, help=text, description=text)
        v.add_argument(
            "--bare",
            metavar="REPO",
            type=Path,
            help="server side: a post-receive hook in this bare repository",
        )
        v.add_argument(
            "--pre-push",
            action="store_true",
            help="client side: a pre-push hook in the current clone",
        )
        if verb == "install":
            _add_paths(v)
        v.set_defaults(func=run_install if verb == "install" else run_uninstall)
    r = verbs.add_parser("run", help="(called by the installed hooks)")
    r.add_argument("kind", choices=("post-receive", "pre-push"))
    r.add_argument("--repo", type=Path, help="the bare repository (post-receive)")
    _add_paths(r)
    r.add_argument("hook_args", nargs="*", help="what git passed to the hook")
    r.set_defaults(func=run_hook)


def _add_paths(p: argparse.ArgumentParser) -> None:
    p.add_argument("--branch", default="main", help="branch whose pushes are applied (--bare)")
    p.add_argument(
        "--work-dir",
        type=Path,
        metavar="DIR",
        help="where the pushed commit is checked out (default REPO/reconciler/work)",
    )
    p.add_argument(
        "--state",
        type=Path,
        metavar="DIR",
        help="state directory (--bare default REPO/reconciler/state; --pre-push "
        "default: the clone's own settings)",
    )
    p.add_argument(
        "--manifests",
        metavar="DIR",
        help="manifests directory inside the pushed tree (default: [tool.reconciler] "
        "of the pushed pyproject.toml, else 'manifests')",
    )


def _require_target(args: argparse.Namespace) -> None:
    if args.bare is None and not args.pre_push:
        raise HookError("say where: --bare REPO (server side) and/or --pre-push (this clone)")


def _clone_hooks() -> Path:
    try:
        top = gitutil.toplevel(Path.cwd())
    except gitutil.GitError:
        raise HookError(
            f"{Path.cwd()} is not inside a git clone",
            hint="run `reconciler hooks ... --pre-push` from your clone",
        ) from None
    return gitutil.hooks_dir(top)


def _bare_repo(path: Path) -> Path:
    repo = path.resolve()
    try:
        bare = repo.is_dir() and gitutil.is_bare(repo)
    except gitutil.GitError:
        bare = False
    if not bare:
        raise HookError(
            f"{path} is not a bare git repository",
            hint="create one with `git init --bare -b main REPO`",
        )
    return repo


def run_install(args: argparse.Namespace) -> int:
    _require_target(args)
    installed = []
    if args.bare is not None:
        repo = _bare_repo(args.bare)
        base = repo / "reconciler"
        argv = [
            "hooks",
            "run",
            "post-receive",
            "--repo",
            str(repo),
            "--branch",
            args.branch,
            "--work-dir",
            str((args.work_dir or base / "work").resolve()),
            "--state",
            str((args.state or base / "state").resolve()),
        ]
        if args.manifests:
            argv += ["--manifests", args.manifests]
        installed.append(install_hook(gitutil.hooks_dir(repo), "post-receive", argv))
    if args.pre_push:
        argv = ["hooks", "run", "pre-push"]
        if args.state is not None:
            argv += ["--state", str(args.state.resolve())]
        if args.manifests:
            argv += ["--manifests", args.manifests]
        installed.append(install_hook(_clone_hooks(), "pre-push", argv))
    for result in installed:
        verb = "updated" if result.updated else "installed"
        print(f"{verb} {result.path}")
        if result.moved_aside is not None:
            print(f"  the existing hook was moved to {result.moved_aside} and runs first")
    return EXIT_OK


def run_uninstall(args: argparse.Namespace) -> int:
    _require_target(args)
    if args.bare is not None:
        print(uninstall_hook(gitutil.hooks_dir(_bare_repo(args.bare)), "post-receive"))
    if args.pre_push:
        print(uninstall_hook(_clone_hooks(), "pre-push"))
        ours = _pre_push_dir(gitutil.toplevel(Path.cwd()))
        if ours.is_dir():  # the hook's tree, its index, its plan cache: all of it ours
            shutil.rmtree(ours)
            print(f"{ours}: removed")
    return EXIT_OK


# --------------------------------------------------------------------------- running


def _pre_push_dir(clone: Path) -> Path:
    """Where the pre-push hook keeps its tree (and, without a state in the clone, its plan
    cache): ``reconciler`` in the clone's git directory."""
    git_dir = Path(gitutil.git_text(["rev-parse", "--absolute-git-dir"], cwd=clone))
    return git_dir / "reconciler"


@contextlib.contextmanager
def _cwd(path: Path) -> Iterator[None]:
    before = Path.cwd()
    os.chdir(path)
    try:
        yield
    finally:
        os.chdir(before)


def _flush() -> None:
    sys.stdout.flush()
    sys.stderr.flush()


def run_hook(args: argparse.Namespace) -> int:
    stdin = sys.stdin.buffer.read()
    if args.kind == "post-receive":
        if args.repo is None:
            raise HookError("hooks run post-receive needs --repo")
        run_chained(gitutil.hooks_dir(args.repo) / "post-receive", args.hook_args, stdin)
        return post_receive(args, stdin.decode(errors="replace"))
    chained = run_chained(_clone_hooks() / "pre-push", args.hook_args, stdin)
    code = pre_push(args, stdin.decode(errors="replace"))
    return code or (EXIT_ERROR if chained else EXIT_OK)


def post_receive(args: argparse.Namespace, text: str) -> int:
    """Apply a push to the branch. Always exits 0: the push already happened, and the
    pusher is told plainly when the apply failed."""
    try:
        code = _apply_push(args, text)
    except ReconcilerError as exc:
        render_error(exc)
        code = exc.exit_code
    except Exception:
        traceback.print_exc()
        code = EXIT_ERROR
    _flush()
    if code != EXIT_OK:
        print(
            f"reconciler: APPLY FAILED (exit {code}). The push itself was accepted; fix the "
            "problem above and push again (unchanged projects cost nothing).",
            file=sys.stderr,
        )
    return EXIT_OK


def _apply_push(args: argparse.Namespace, text: str) -> int:
    repo: Path = args.repo
    target = f"refs/heads/{args.branch}"
    updates = [u for u in gitutil.parse_post_receive(text) if u.ref == target]
    if not updates:
        print(f"reconciler: nothing pushed to {args.branch}; nothing to apply")
        return EXIT_OK
    if updates[-1].deleted:
        print(f"reconciler: {args.branch} was deleted; nothing applied, the state is kept")
        return EXIT_OK
    work = args.work_dir or repo / "reconciler" / "work"
    state = args.state or repo / "reconciler" / "state"
    with state_lock(repo / "reconciler", timeout=HOOK_LOCK_TIMEOUT):
        # Concurrent pushes queue on the lock; whoever runs applies the branch tip, so an
        # older push that waited can never roll back a newer one.
        sha = gitutil.rev_parse(repo, target) or updates[-1].new
        print(f"reconciler: applying {args.branch} at {sha[:12]}")
        _flush()
        gitutil.replace_work_tree(repo, sha, work)
        # the work tree is the pushed commit's tree: timelineFiles may reach all of it
        argv = ["apply", "--state", str(state), "--repository", str(work)]
        if args.manifests:
            argv += ["--manifests", args.manifests]
        with _cwd(work):
            code = main(argv)
    _flush()
    return code


def pre_push(args: argparse.Namespace, text: str) -> int:
    """Validate and plan each pushed commit (not the working tree); 1 blocks the push.

    Each commit is checked out into a tree of the hook's own inside the clone's git
    directory, updated in place (``gitutil.replace_work_tree``), so that the plan cache knows
    every file the push did not change: a push of one edit to a large catalogue costs a
    ``stat`` per unchanged file, not an export and a cold parse of the whole catalogue."""
    clone = gitutil.toplevel(Path.cwd())
    ours = _pre_push_dir(clone)
    git_dir = ours.parent
    state: Path = args.state or resolve_settings({}, os.environ, clone).state
    state = state if state.is_absolute() else clone / state
    if not state.is_dir():
        # No state in this clone (the server keeps it): the plan is against an empty state
        # either way, and one of the hook's own gives its plan cache a home.
        state = ours / "state"
        state.mkdir(parents=True, exist_ok=True)
    tree = ours / "pre-push"
    seen: set[str] = set()
    blocked = False
    for update in gitutil.parse_pre_push(text):
        if update.deleted or update.ref.startswith("refs/tags/") or update.new in seen:
            continue
        seen.add(update.new)
        print(f"reconciler pre-push: {update.ref} -> {update.remote_ref} ({update.new[:12]})")
        _flush()
        with state_lock(ours, timeout=HOOK_LOCK_TIMEOUT):  # two pushes from this clone at once
            gitutil.replace_work_tree(git_dir, update.new, tree)
            manifests = resolve_settings({"manifests": args.manifests}, os.environ, tree).manifests
            if not (manifests if manifests.is_absolute() else tree / manifests).is_dir():
                print(
                    f"reconciler pre-push: no {manifests} directory in that commit; "
                    "nothing to check"
                )
                continue
            argv = ["plan", "--state", str(state), "--repository", str(tree)]
            if args.manifests:
                argv += ["--manifests", args.manifests]
            with _cwd(tree):
                code = main(argv)
        _flush()
        blocked = blocked or code != EXIT_OK
    if blocked:
        print(
            "reconciler pre-push: push blocked: the commit being pushed has invalid "
            "manifests (see above). Fix them, or bypass with `git push --no-verify`.",
            file=sys.stderr,
        )
        return EXIT_ERROR
    return EXIT_OK
