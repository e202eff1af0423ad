"""Typed dependencies shared by the routers."""

from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import AsyncSession

from prodorder_api.db import session_dependency
from prodorder_api.pagination import PageParams, page_params
from prodorder_api.settings import Settings


async def app_settings(request: Request) -> Settings:
    """The settings the app was built with (``create_app``)."""
    settings: Settings = request.app.state.settings
    return settings


# One session per request (FastAPI caches the dependency); routing.ApiRoute commits it.
Session = Annotated[AsyncSession, Depends(session_dependency)]
Paging = Annotated[PageParams, Depends(page_params)]
AppSettings = Annotated[Settings, Depends(app_settings)]
