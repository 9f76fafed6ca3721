"""reconciler: declarative, GitOps-style reconciler for Alibaba Cloud VOD online editing."""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["__version__"]
