"""reconciler: declarative, GitOps-style reconciler for Alibaba Cloud VOD online editing.

The library surface is small on purpose: load manifests, plan against a state, and the
error root. Everything else is reachable through its module but not promised.
"""

from __future__ import annotations

from reconciler.errors import ManifestError, ManifestIssue, ReconcilerError

__version__ = "0.1.0"

__all__ = [
    "ManifestError",
    "ManifestIssue",
    "ReconcilerError",
    "__version__",
    "load_manifests",
    "plan",
]


def __getattr__(name: str) -> object:
    # Lazy, so `import reconciler` stays cheap for the CLI's start-up.
    if name == "load_manifests":
        from reconciler.adapters.loader import load_manifests

        return load_manifests
    if name == "plan":
        from reconciler.core.planner import plan

        return plan
    raise AttributeError(name)
