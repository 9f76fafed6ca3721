"""A local stand-in for ApsaraVideo VOD online editing: same wire protocol, same semantics.

``Emulator`` holds the state and answers requests; ``EmulatorTransport`` plugs it into httpx
in-process; ``EmulatorServer`` serves it over HTTP. See docs in each module.
"""

from __future__ import annotations

from reconciler.adapters.emulator.config import EmulatorConfig
from reconciler.adapters.emulator.inspection import Counts
from reconciler.adapters.emulator.models import (
    CallRecord,
    DemoCredentials,
    EventRecord,
    Job,
    Project,
)
from reconciler.adapters.emulator.server import EmulatorServer
from reconciler.adapters.emulator.service import Emulator, EmulatorResponse
from reconciler.adapters.emulator.transport import EmulatorTransport

__all__ = [
    "CallRecord",
    "Counts",
    "DemoCredentials",
    "Emulator",
    "EmulatorConfig",
    "EmulatorResponse",
    "EmulatorServer",
    "EmulatorTransport",
    "EventRecord",
    "Job",
    "Project",
]
