"""Render lifecycle: wait for queued renders to finish (Produced / ProduceFailed).

``Waiter`` polls GetEditingProject with a growing interval (1 s up to 10 s by default, and
the client keeps its own QPS budget) until every target is final or the timeout passes;
finished renders are handed to ``on_finished`` as soon as they are known, so an interrupted
wait loses nothing. Clock and sleep are injectable for tests.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from reconciler.adapters.callbacks import FINAL_STATUSES, Produced
from reconciler.core.state import State
from reconciler.engine.apply import utc_now
from reconciler.engine.protocol import VodLike
from reconciler.errors import VodError

WAITING_STATUSES = ("Producing", "Unknown")
NOT_FOUND = "InvalidEditingProject.NotFound"


@dataclass(frozen=True)
class Target:
    """A render still in flight according to the state."""

    name: str
    project_id: str
    media_id: str | None
    submitted_at: str | None = None


@dataclass(frozen=True)
class WaitResult:
    target: Target
    status: str  # Produced | ProduceFailed | Timeout | Deleted | Error
    at: str | None = None  # when the final status was learned
    last_seen: str | None = None  # the remote status seen last (for a timeout)
    error: VodError | None = None

    @property
    def ok(self) -> bool:
        return self.status == "Produced"

    @property
    def final(self) -> bool:
        return self.status in FINAL_STATUSES

    def produced(self) -> Produced:
        assert self.final and self.at is not None
        return Produced(self.target.media_id, self.status, self.at, name=self.target.name)

    def describe(self) -> str:
        t = self.target
        head = f"{self.status:<13} {t.name}  project={t.project_id}  media={t.media_id or '-'}"
        if self.status == "Timeout":
            return f"{head}  (still {self.last_seen or 'unknown'} when the timeout passed)"
        if self.status == "Deleted":
            return f"{head}  (the project no longer exists in VOD)"
        if self.error is not None:
            return f"{head}  {str(self.error).splitlines()[0]}"
        return head


def waiting_targets(state: State, names: Iterable[str] | None = None) -> list[Target]:
    """Projects whose last render is still Producing/Unknown (optionally only ``names``)."""
    wanted = None if names is None else set(names)
    out: list[Target] = []
    for name, entry in sorted(state.projects.items()):
        last = entry.get("last_render") or {}
        if wanted is not None and name not in wanted:
            continue
        if entry.get("project_id") and last and last.get("status") in WAITING_STATUSES:
            out.append(
                Target(name, entry["project_id"], last.get("media_id"), last.get("submitted_at"))
            )
    return out


@dataclass(frozen=True)
class Backoff:
    """Poll intervals: ``initial`` growing by ``factor`` up to ``maximum`` seconds."""

    initial: float = 1.0
    maximum: float = 10.0
    factor: float = 2.0

    def delays(self) -> Iterator[float]:
        delay = self.initial
        while True:
            yield min(delay, self.maximum)
            delay = min(delay * self.factor, self.maximum)


class Waiter:
    """Polls until every target is final, failed to be read, or the timeout passes."""

    def __init__(
        self,
        client: VodLike,
        *,
        backoff: Backoff | None = None,
        parallelism: int = 8,
        monotonic: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        now: Callable[[], str] = utc_now,
        on_finished: Callable[[list[WaitResult]], None] | None = None,
        on_poll: Callable[[int, float], None] | None = None,
    ) -> None:
        self.client = client
        self.backoff = backoff or Backoff()
        self.parallelism = parallelism
        self.monotonic, self.sleep, self.now = monotonic, sleep, now
        self.on_finished = on_finished
        self.on_poll = on_poll  # (targets still open, seconds until the next poll)

    def _status(self, target: Target) -> str | VodError:
        try:
            return self.client.get_editing_project(target.project_id).status or "Unknown"
        except VodError as exc:
            return exc

    def _poll(self, targets: Sequence[Target]) -> list[str | VodError]:
        if len(targets) == 1 or self.parallelism <= 1:
            return [self._status(t) for t in targets]
        with ThreadPoolExecutor(max_workers=min(self.parallelism, len(targets))) as pool:
            return list(pool.map(self._status, targets))

    def wait(self, targets: Sequence[Target], timeout: float | None) -> list[WaitResult]:
        """One result per target, in the order given. ``timeout`` None waits indefinitely."""
        deadline = None if timeout is None else self.monotonic() + timeout
        results: dict[str, WaitResult] = {}
        seen: dict[str, str] = {}
        remaining = list(targets)
        delays = self.backoff.delays()
        while remaining:
            finished: list[WaitResult] = []
            for target, answer in zip(remaining, self._poll(remaining), strict=True):
                if isinstance(answer, VodError):
                    status = "Deleted" if answer.code == NOT_FOUND else "Error"
                    results[target.name] = WaitResult(target, status, error=answer)
                elif answer in FINAL_STATUSES:
                    finished.append(WaitResult(target, answer, at=self.now(), last_seen=answer))
                else:
                    seen[target.name] = answer
            if finished:
                results.update((r.target.name, r) for r in finished)
                if self.on_finished is not None:
                    self.on_finished(finished)
            remaining = [t for t in remaining if t.name not in results]
            if not remaining:
                break
            delay = next(delays)
            if deadline is not None:
                left = deadline - self.monotonic()
                if left <= 0:
                    for t in remaining:
                        results[t.name] = WaitResult(t, "Timeout", last_seen=seen.get(t.name))
                    break
                delay = min(delay, left)
            if self.on_poll is not None:
                self.on_poll(len(remaining), delay)
            self.sleep(delay)
        return [results[t.name] for t in targets]
