"""The curated public surface stays small and importable."""

from __future__ import annotations

import reconciler


def test_all_is_curated_and_resolvable() -> None:
    assert sorted(reconciler.__all__) == [
        "ManifestError",
        "ManifestIssue",
        "ReconcilerError",
        "__version__",
        "load_manifests",
        "plan",
    ]
    for name in reconciler.__all__:
        assert getattr(reconciler, name) is not None


def test_main_survives_a_closed_pipe() -> None:
    import subprocess
    import sys

    proc = subprocess.run(
        f"{sys.executable} -m reconciler schema | head -c 10",
        shell=True,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert "internal error" not in proc.stderr
    assert "Traceback" not in proc.stderr
