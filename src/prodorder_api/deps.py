"""Typed dependencies shared by the routers."""

from typing import Annotated

from fastapi import Depends
from sqlalchemy.ext.asyncio import AsyncSession

from prodorder_api.db import session_dependency
from prodorder_api.pagination import PageParams, page_params

# One session per request (FastAPI caches the dependency); routing.ApiRoute commits it.
Session = Annotated[AsyncSession, Depends(session_dependency)]
Paging = Annotated[PageParams, Depends(page_params)]
