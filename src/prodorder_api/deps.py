"""Typed dependencies shared by the routers."""

from typing import Annotated

from fastapi import Depends
from sqlalchemy.ext.asyncio import AsyncSession

from prodorder_api.db import session_dependency
from prodorder_api.pagination import PageParams, page_params

# scope="function": the transaction commits before the response is sent, so a
# failed commit becomes an error response instead of a 201 that did not happen.
Session = Annotated[AsyncSession, Depends(session_dependency, scope="function")]
Paging = Annotated[PageParams, Depends(page_params)]
