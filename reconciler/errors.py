"""Every exception reconciler raises; the CLI renders them and maps them to exit codes.

Hierarchy::

    ReconcilerError                 root: anything the library raises on purpose
    ├── ConfigError                 bad settings, flags, pyproject, endpoints
    │   └── CredentialsError        no usable credentials (names every place looked at)
    ├── ManifestError               one or more invalid manifests (carries every issue)
    ├── StateError                  state directory problems
    │   ├── StateCorruptError       unreadable / truncated state (names the backup)
    │   └── LockHeldError           another reconcile holds the lock (names the holder)
    ├── VodError                    anything that went wrong talking to VOD
    │   ├── VodApiError             VOD answered with an error document
    │   └── VodTransportError       no (complete) answer: connect/read failure, timeout
    └── EmulatorError               the local emulator could not start / was misused

Exceptions carry data; rendering is the CLI's job. No exception ever carries a
secret, a signature or a whole signed URL.
"""

from __future__ import annotations

from dataclasses import dataclass


class ReconcilerError(Exception):
    """Root of every error raised deliberately by reconciler."""

    exit_code: int = 1

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        if self.hint:
            return f"{self.message}\n  hint: {self.hint}"
        return self.message


class ConfigError(ReconcilerError):
    """A setting, flag or configuration file is wrong."""


class CredentialsError(ConfigError):
    """No usable Alibaba Cloud credentials were found."""


@dataclass(frozen=True, order=True)
class ManifestIssue:
    """One problem in one manifest, positioned as precisely as we can."""

    path: str
    line: int
    col: int
    ref: str  # "EditingProject/name" or "-" when the name is unknown
    field: str  # dotted field path, "-" when the whole document is at fault
    message: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}:{self.col}: {self.ref}: {self.field}: {self.message}"


class ManifestError(ReconcilerError):
    """The manifest set is invalid; ``issues`` lists every problem in every file."""

    def __init__(self, issues: list[ManifestIssue]) -> None:
        self.issues = sorted(issues)
        n = len(self.issues)
        super().__init__(f"{n} invalid manifest field{'s' if n != 1 else ''}; nothing was applied")


class StateError(ReconcilerError):
    """The state directory cannot be used as it is."""


class StateCorruptError(StateError):
    """The state file cannot be read; the message names the backup to restore."""


class LockHeldError(StateError):
    """Another reconcile holds the state lock."""

    def __init__(self, message: str, *, holder: dict[str, object] | None = None) -> None:
        super().__init__(
            message,
            hint="wait for it to finish, or run `reconciler state unlock` "
            "if you are sure the holder is gone",
        )
        self.holder = holder or {}


class VodError(ReconcilerError):
    """A VOD call failed.

    ``retryable``: sending the same request again (re-signed) is safe and may succeed.
    ``ambiguous``: the request may have reached VOD and taken effect even though we got
    no answer; a non-idempotent call must be checked before it is repeated.
    """

    def __init__(
        self,
        message: str,
        *,
        action: str,
        code: str,
        request_id: str | None = None,
        http_status: int | None = None,
        retryable: bool = False,
        ambiguous: bool = False,
        hint: str | None = None,
    ) -> None:
        super().__init__(message, hint=hint)
        self.action = action
        self.code = code
        self.request_id = request_id
        self.http_status = http_status
        self.retryable = retryable
        self.ambiguous = ambiguous

    def __str__(self) -> str:
        parts = [f"{self.action}: {self.code}: {self.message}"]
        if self.request_id:
            parts.append(f"(RequestId {self.request_id})")
        text = " ".join(parts)
        return f"{text}\n  hint: {self.hint}" if self.hint else text


class VodApiError(VodError):
    """VOD answered with an error document (Code, Message, RequestId)."""


class VodTransportError(VodError):
    """No complete answer came back (connect failure, reset, timeout)."""


class EmulatorError(ReconcilerError):
    """The local VOD emulator could not do what was asked."""
