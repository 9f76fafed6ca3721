"""Catalogue-scale benchmarks of reconciler, run as users run it (fresh processes).

    python bench/run.py --quick             # N=1,000, 3 runs, apply of 200 (about a minute)
    python bench/run.py --n 1000            # one catalogue size, full runs, apply of 1,000
    python bench/run.py --n 10000           # ditto at 10,000
    python bench/run.py                     # N=1,000 and 10,000, apply, naive SDK (~5 min)

For each N: (a) the floor, reading and hashing every manifest byte (bench/baseline.py, its
own process); (b) a cold ``plan`` (no caches, state in sync: a plan of the whole catalogue);
(c) a warm no-op ``plan``; (d) ``plan`` after editing one manifest; (g) ``plan`` after a fresh
checkout; (h) ``apply`` of one edit against the embedded emulator; (f) peak RSS of each.
Then, against ``reconciler emulator serve`` with 50 ms latency and a 50 QPS limit: (e)
``apply`` of A changed projects (floor A / 50 s), and the naive SDK script (bench/naive_sdk.py)
next to ``apply`` on the same catalogue with 10 projects changed. Medians; see bench/README.md.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from emu import ACCESS_KEY, credentials_env, served
from gen import Catalogue, count_files
from proc import PYTHON, ROOT, Run, check, clean_env, measure, median, reconciler
from statesync import seed_emulator, sync_state

LATENCY, QPS_LIMIT = 0.05, 50.0
RACY_S = 2.0  # reconciler trusts no file timestamp younger than this (manifest_cache.RACY_NS)


def settle(*paths: Path) -> None:
    """Wait until the files are old enough for the caches to trust their timestamps."""
    newest = max(max(p.stat().st_mtime, p.stat().st_ctime) for p in paths if p.exists())
    time.sleep(max(0.0, newest + RACY_S + 0.1 - time.time()))


def runs_of(cmd: list[str], cwd: Path, n: int, env: dict[str, str] | None = None) -> list[Run]:
    return [check(measure(cmd, cwd=cwd, env=env), " ".join(cmd[2:4])) for _ in range(n)]


def summary(runs: list[Run]) -> dict[str, float]:
    return {
        "s": median([r.seconds for r in runs]),
        "min_s": min(r.seconds for r in runs),
        "rss_mb": max(r.rss_mb for r in runs),
        "runs": len(runs),
    }


def plan_bench(work: Path, n: int, runs: int) -> dict[str, Any]:
    root = work / f"n{n}"
    manifests, state = root / "manifests", root / "state"
    print(f"\n== N = {n:,}: generating the catalogue and a state in sync ...", flush=True)
    catalogue = Catalogue(manifests, n)
    catalogue.write()
    sync_state(manifests.absolute(), state)
    files, size = count_files(manifests)
    plan = reconciler("plan", "--manifests", "manifests", "--state", "state")
    out: dict[str, Any] = {"n": n, "files": files, "bytes": size}

    out["python_startup"] = summary(runs_of([PYTHON, "-c", "pass"], root, runs))
    out["reconciler_startup"] = summary(runs_of(reconciler("--version"), root, runs))
    baseline = [PYTHON, str(ROOT / "bench/baseline.py"), "manifests"]
    out["a_baseline"] = summary(runs_of(baseline, root, runs))
    print(f"(a) baseline {out['a_baseline']['s']:.3f}s", flush=True)

    settle(state / "state.json", state / "journal.jsonl")
    # Each cold plan is paired with three runs of (a) just before it: on a shared VM the two
    # drift together, so the median of the pairs' ratios is steadier than a ratio of two
    # medians; (a) is short (~0.15 s), and the median of three keeps one slow read of it
    # from making a pair.
    cold, paired = [], []
    for _ in range(runs):
        floors = [check(measure(baseline, cwd=root), "baseline") for _ in range(3)]
        shutil.rmtree(state / "cache", ignore_errors=True)
        cold.append(check(measure(plan, cwd=root), "cold plan"))
        paired.append(cold[-1].seconds / median([f.seconds for f in floors]))
    out["b_cold"] = summary(cold)
    out["b_cold"]["paired_ratio"] = median(paired)
    out["b_cold"]["paired_ratios"] = paired
    print(
        f"(b) cold plan {out['b_cold']['s']:.3f}s, {median(paired):.1f}x its paired (a)",
        flush=True,
    )

    check(measure(plan, cwd=root), "warm-up plan")  # builds whatever the cold run could not
    # (c) and (d) alternate, as (a) and (b) do: each edit is planned right after a no-op plan,
    # then undone (and planned once more, untimed, so the next no-op plan is a warm one).
    warm, edited, paired_d = [], [], []
    victim = random.Random(n).choice(catalogue.projects)
    for _ in range(runs):
        warm.append(check(measure(plan, cwd=root), "warm no-op plan"))
        assert " 0 to render" in warm[-1].out, warm[-1].out
        catalogue.edit([victim])
        edited.append(check(measure(plan, cwd=root), "plan after an edit"))
        assert " 1 to render" in edited[-1].out, edited[-1].out
        paired_d.append(edited[-1].seconds / warm[-1].seconds)
        catalogue.revert([victim])
        check(measure(plan, cwd=root), "plan after undoing the edit")
    out["c_warm"] = summary(warm)
    print(f"(c) warm no-op plan {out['c_warm']['s']:.3f}s", flush=True)
    out["d_edit_one"] = summary(edited)
    out["d_edit_one"]["paired_ratio"] = median(paired_d)
    out["d_edit_one"]["paired_ratios"] = paired_d
    print(
        f"(d) plan after editing one file {out['d_edit_one']['s']:.3f}s, "
        f"{median(paired_d):.2f}x its paired (c)",
        flush=True,
    )

    # (g) a fresh checkout at the same path (the post-receive hook made one of every push until
    # it updated its tree in place): new inodes and ctimes, the same bytes -- then a plan.
    fresh = []
    catalogue.edit([victim])  # as (g) has always been measured: one project to render, ...
    check(measure(plan, cwd=root), "plan after an edit")  # ... its file already in the cache
    for _ in range(runs):
        fresh_checkout(manifests)
        run = check(measure(plan, cwd=root), "plan after a fresh checkout")
        assert " 1 to render" in run.out, run.out
        fresh.append(run)
    out["g_fresh_checkout"] = summary(fresh)
    print(f"(g) plan after a fresh checkout {out['g_fresh_checkout']['s']:.3f}s", flush=True)

    # (h) apply of one edit to the catalogue (a push to main, a CI apply job): the state's
    # projects exist in the embedded emulator, so it really renders -- and rewrites state.json.
    seed_emulator(state)
    apply = reconciler(
        "apply", "--manifests", "manifests", "--state", "state", "--endpoint", "emulator"
    )
    applied = []
    for _ in range(runs):
        catalogue.edit([victim])
        run = check(measure(apply, cwd=root), "apply of one edit")
        assert " 1 rendered" in run.out, run.out[-2000:]
        applied.append(run)
    out["h_apply_one"] = summary(applied)
    print(f"(h) apply of one edit {out['h_apply_one']['s']:.3f}s", flush=True)
    return out


def fresh_checkout(tree: Path) -> None:
    """Replace ``tree`` by a copy of itself, as ``gitutil.replace_work_tree`` swaps in an
    exported commit: every file new (inode, ctime), mtimes and bytes kept."""
    new, old = tree.with_name(tree.name + ".new"), tree.with_name(tree.name + ".old")
    shutil.copytree(tree, new)
    tree.rename(old)
    new.rename(tree)
    shutil.rmtree(old)


def _apply_counts(run: Run) -> dict[str, int]:
    found = re.search(r"(\d+) rendered.* (\d+) failed", run.out)
    return {"rendered": int(found.group(1)), "failed": int(found.group(2))} if found else {}


def _server_counts(calls: list[dict[str, Any]]) -> dict[str, int]:
    produce = [c for c in calls if c["Action"] == "ProduceEditingProjectVideo"]
    return {
        "produce_ok": sum(1 for c in produce if c["Code"] == "OK"),
        "throttled": sum(1 for c in calls if "Throttling" in c["Code"]),
        "requests": len(calls),
    }


def apply_bench(work: Path, size: int, runs: int, qps: float, parallelism: int) -> dict[str, Any]:
    root = work / "apply"
    manifests, data = root / "manifests", root / "emulator"
    print(f"\n== apply: {size:,} projects; creating them on an unthrottled server ...", flush=True)
    catalogue = Catalogue(manifests, size, seed=11)
    catalogue.write()
    env = credentials_env()
    common = ["--manifests", "manifests", "--state", "state", "--signature", "v3"]
    with served(data) as server:
        setup = measure(
            reconciler("apply", *common, "--endpoint", server.url, "--qps", "2000"),
            cwd=root,
            env=env,
        )
        check(setup, "setup apply")
    out: dict[str, Any] = {"projects": size, "latency_s": LATENCY, "qps_limit": QPS_LIMIT}
    out["setup_s"] = setup.seconds
    floor = size / QPS_LIMIT
    flags = ["--qps", str(qps), "--parallelism", str(parallelism)]
    with served(data, latency=LATENCY, qps_limit=QPS_LIMIT) as server:
        apply = reconciler("apply", *common, "--endpoint", server.url, *flags)
        measured = []
        for _ in range(runs):
            catalogue.edit(catalogue.projects)
            server.reset()
            run = measure(apply, cwd=root, env=env)
            counts = {**_apply_counts(run), **_server_counts(server.calls()), "rc": run.rc}
            measured.append((run, counts))
            print(f"(e) apply of {size}: {run.seconds:.2f}s {counts}", flush=True)
        out["e_apply"] = summary([r for r, _ in measured]) | {"floor_s": floor}
        out["e_counts"] = [c for _, c in measured]
        out["e_flags"] = flags

        # What users do today, on the same catalogue with 10 projects changed.
        catalogue.edit(random.Random(3).sample(catalogue.projects, 10))
        server.reset()
        ours = measure(apply, cwd=root, env=env)
        ours_counts = {**_apply_counts(ours), **_server_counts(server.calls()), "rc": ours.rc}
        print(f"ours, 10 changed: {ours.seconds:.2f}s {ours_counts}", flush=True)
        server.reset()
        naive_cmd = [PYTHON, str(ROOT / "bench/naive_sdk.py"), "--manifests", "manifests"]
        naive_cmd += ["--state", "state", "--endpoint", f"127.0.0.1:{server.port}"]
        naive_cmd += ["--access-key", ":".join(ACCESS_KEY)]
        naive = measure(naive_cmd, cwd=root, env=clean_env())
        naive_counts = _server_counts(server.calls()) | {"rc": naive.rc}
        print(f"naive SDK loop: {naive.seconds:.2f}s {naive_counts}", flush=True)
    out["ours_10_changed"] = {"s": ours.seconds, "rss_mb": ours.rss_mb, **ours_counts}
    out["naive_sdk"] = {"s": naive.seconds, "rss_mb": naive.rss_mb, **naive_counts}
    return out


def table(results: dict[str, Any]) -> str:
    lines = [
        "| N | files | (a) read+hash | (b) cold plan | (c) warm no-op | (d) edit one "
        "| (b)/(a) | (b)/(a) paired | (c)/(a) | (d)/(c) | (d)/(c) paired | work-only (b)/(a) "
        "| work-only (c)/(a) | peak RSS |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in results.get("plans", []):
        a, b, c, d = (r[k]["s"] for k in ("a_baseline", "b_cold", "c_warm", "d_edit_one"))
        py, cli = r["python_startup"]["s"], r["reconciler_startup"]["s"]
        rss = max(r[k]["rss_mb"] for k in ("b_cold", "c_warm", "d_edit_one"))
        work_a = max(a - py, 1e-3)
        lines.append(
            f"| {r['n']:,} | {r['files']:,} | {a:.3f} s | {b:.2f} s | {c:.3f} s | {d:.3f} s "
            f"| {b / a:.1f}x | {r['b_cold'].get('paired_ratio', float('nan')):.1f}x "
            f"| {c / a:.2f}x | {d / c:.2f}x "
            f"| {r['d_edit_one'].get('paired_ratio', float('nan')):.2f}x "
            f"| {(b - cli) / work_a:.1f}x "
            f"| {(c - cli) / work_a:.2f}x | {rss:.0f} MB |"
        )
    fresh = [r for r in results.get("plans", []) if "g_fresh_checkout" in r]
    if fresh:
        lines += [
            "",
            "| N | (g) plan after a fresh checkout | (g)/(a) | (g)/(c) | peak RSS "
            "| (h) apply of one edit | peak RSS |",
            "|---|---|---|---|---|---|---|",
        ]
        for r in fresh:
            a, c, g = (r[k]["s"] for k in ("a_baseline", "c_warm", "g_fresh_checkout"))
            h = r.get("h_apply_one", {"s": float("nan"), "rss_mb": float("nan")})
            lines.append(
                f"| {r['n']:,} | {g:.3f} s | {g / a:.2f}x | {g / c:.2f}x "
                f"| {r['g_fresh_checkout']['rss_mb']:.0f} MB | {h['s']:.3f} s "
                f"| {h['rss_mb']:.0f} MB |"
            )
    e = results.get("apply")
    if e:
        ea = e["e_apply"]
        lines += [
            "",
            "| (e) apply | median | floor | ratio | renders | throttled, retried | failed "
            "| peak RSS |",
            "|---|---|---|---|---|---|---|---|",
            f"| {e['projects']:,} changed, {' '.join(e['e_flags'])} | {ea['s']:.2f} s "
            f"| {ea['floor_s']:.0f} s | {ea['s'] / ea['floor_s']:.3f}x "
            f"| {e['e_counts'][-1].get('produce_ok')} "
            f"| {max(c['throttled'] for c in e['e_counts'])} "
            f"| {max(c.get('failed', 0) for c in e['e_counts'])} | {ea['rss_mb']:.0f} MB |",
            "",
            f"| {e['projects']:,} projects, 10 changed | wall time | renders | requests |",
            "|---|---|---|---|",
            f"| naive SDK loop (serial) | {e['naive_sdk']['s']:.1f} s "
            f"| {e['naive_sdk']['produce_ok']} | {e['naive_sdk']['requests']} |",
            f"| reconciler apply | {e['ours_10_changed']['s']:.1f} s "
            f"| {e['ours_10_changed']['produce_ok']} | {e['ours_10_changed']['requests']} |",
        ]
    return "\n".join(lines)


def compile_bytecode() -> None:
    """Compile reconciler's bytecode, as pip does when it installs a wheel: the runs measure
    the tool, not Python compiling it. (An editable install writes it on first import --
    unless PYTHONDONTWRITEBYTECODE is set, as in some sandboxes and containers; then every
    run recompiled each module changed since its last .pyc: ~18 ms of a 0.19 s warm plan.)"""
    import compileall

    compileall.compile_dir(ROOT / "reconciler", quiet=1)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, action="append", help="catalogue size (repeatable)")
    ap.add_argument("--quick", action="store_true", help="N=1,000, 3 runs, apply of 200")
    ap.add_argument("--runs", type=int, help="runs of the fast measurements (default 5)")
    ap.add_argument("--apply-size", type=int, help="projects changed for (e) (default 1,000)")
    ap.add_argument("--apply-runs", type=int, help="runs of (e) (default 2)")
    ap.add_argument("--qps", type=float, default=50.0, help="apply --qps for (e)")
    ap.add_argument("--parallelism", type=int, default=8, help="apply --parallelism for (e)")
    ap.add_argument("--no-apply", action="store_true", help="skip (e) and the naive SDK loop")
    ap.add_argument("--workdir", type=Path, help="keep the catalogues here (default: a temp dir)")
    args = ap.parse_args(argv)
    sizes = args.n or ([1000] if args.quick else [1000, 10000])
    runs = args.runs or (3 if args.quick else 5)
    apply_size = args.apply_size or (200 if args.quick else 1000)
    apply_runs = args.apply_runs or (1 if args.quick else 2)

    compile_bytecode()
    work = args.workdir or Path(tempfile.mkdtemp(prefix="reconciler-bench-"))
    results: dict[str, Any] = {"cpus": len(os.sched_getaffinity(0))}
    results["python"] = sys.version.split()[0]
    try:
        results["plans"] = [plan_bench(work, n, runs) for n in sizes]
        if not args.no_apply:
            results["apply"] = apply_bench(work, apply_size, apply_runs, args.qps, args.parallelism)
    finally:
        if args.workdir is None:
            shutil.rmtree(work, ignore_errors=True)
    out_dir = ROOT / "bench" / "out"
    out_dir.mkdir(exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    (out_dir / f"results-{stamp}.json").write_text(json.dumps(results, indent=1) + "\n")
    print("\n" + table(results))
    print(f"\n(raw numbers: bench/out/results-{stamp}.json)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
