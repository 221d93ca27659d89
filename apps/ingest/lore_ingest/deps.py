"""FastAPI dependencies of lore-ingest; tests replace them with `app.dependency_overrides`."""

from __future__ import annotations

from functools import cache
from typing import Annotated, cast

from fastapi import Depends, Request

from lore_core.callers import Callers, CallerSettings
from lore_core.dapr import Sidecar
from lore_ingest.service import IngestService
from lore_ingest.settings import Settings


def get_settings(request: Request) -> Settings:
    return cast(Settings, request.app.state.settings)


def get_service(request: Request) -> IngestService:
    return cast(IngestService, request.app.state.service)


def get_sidecar(request: Request) -> Sidecar:
    return cast(Sidecar, request.app.state.sidecar)


SettingsDep = Annotated[Settings, Depends(get_settings)]
ServiceDep = Annotated[IngestService, Depends(get_service)]
SidecarDep = Annotated[Sidecar, Depends(get_sidecar)]


@cache
def get_callers() -> Callers:
    """The app-ids trusted to invoke the internal routes and set the tenant (lore_core.callers)."""
    return Callers.from_settings(CallerSettings())


CallersDep = Annotated[Callers, Depends(get_callers)]
