"""FastAPI dependencies of lore-gateway; tests replace them with `app.dependency_overrides`."""

from __future__ import annotations

from typing import Annotated, cast

from fastapi import Depends, Request

from lore_gateway.services import Lore
from lore_gateway.settings import Settings


def get_settings(request: Request) -> Settings:
    return cast(Settings, request.app.state.settings)


def get_lore(request: Request) -> Lore:
    return cast(Lore, request.app.state.lore)


SettingsDep = Annotated[Settings, Depends(get_settings)]
LoreDep = Annotated[Lore, Depends(get_lore)]
