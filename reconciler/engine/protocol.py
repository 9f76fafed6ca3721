"""What the engine needs of a VOD client (structural: VodClient satisfies it)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol


class ProjectLike(Protocol):
    @property
    def project_id(self) -> str: ...
    @property
    def title(self) -> str | None: ...
    @property
    def description(self) -> str | None: ...
    @property
    def cover_url(self) -> str | None: ...
    @property
    def status(self) -> str | None: ...
    @property
    def timeline(self) -> dict[str, Any] | None: ...
    @property
    def creation_time(self) -> str | None: ...
    @property
    def modified_time(self) -> str | None: ...
    @property
    def request_id(self) -> str | None: ...


class ProduceResultLike(Protocol):
    @property
    def media_id(self) -> str: ...
    @property
    def request_id(self) -> str | None: ...


class VodLike(Protocol):
    def add_editing_project(
        self,
        *,
        title: str,
        description: str | None = None,
        timeline: dict[str, Any] | None = None,
        cover_url: str | None = None,
    ) -> ProjectLike: ...

    def update_editing_project(
        self,
        project_id: str,
        *,
        title: str | None = None,
        description: str | None = None,
        timeline: dict[str, Any] | None = None,
        cover_url: str | None = None,
    ) -> str: ...

    def get_editing_project(self, project_id: str) -> ProjectLike: ...

    def search_editing_projects(self, *, title: str | None = None) -> Sequence[ProjectLike]: ...

    def delete_editing_projects(self, project_ids: Sequence[str]) -> str: ...

    def produce_editing_project_video(
        self,
        *,
        project_id: str | None = None,
        timeline: dict[str, Any] | None = None,
        title: str | None = None,
        description: str | None = None,
        cover_url: str | None = None,
        media_metadata: dict[str, Any] | None = None,
        produce_config: dict[str, Any] | None = None,
        user_data: dict[str, Any] | None = None,
    ) -> ProduceResultLike: ...
