"""Fixtures every test directory shares."""

from __future__ import annotations

import os
from typing import Any

import pytest

from reconciler.adapters import loader


@pytest.fixture
def parses(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The files the loader actually parses (its per-file parse function, counted), by name."""
    seen: list[str] = []
    real = loader._file

    def counting(path: str, ctx: Any) -> Any:
        seen.append(os.path.basename(path))
        return real(path, ctx)

    monkeypatch.setattr(loader, "_file", counting)
    return seen
