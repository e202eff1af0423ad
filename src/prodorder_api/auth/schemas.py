import uuid
from datetime import datetime
from typing import Literal

from pydantic import Field
from typing_extensions import TypeAliasType

from prodorder_api.fields import Name, RequestModel, ResponseModel

Scope = TypeAliasType("Scope", Literal["read", "write", "admin"])


class ApiKeyCreate(RequestModel):
    name: Name = Field(description="What the key is for, e.g. the system that uses it.")
    scope: Scope = Field(
        description="`read`: GET only; `write`: also every change; `admin`: also API keys "
        "and webhooks."
    )


class ApiKeyOut(ResponseModel):
    id: uuid.UUID
    name: str
    scope: Scope
    prefix: str = Field(description="The token's first characters, to recognise it by.")
    created_at: datetime
    last_used_at: datetime | None = Field(
        description="When the key was last accepted, to the minute; null if never."
    )
    revoked_at: datetime | None = Field(description="Refused from then on; null while active.")


class ApiKeyCreated(ResponseModel):
    id: uuid.UUID
    name: str
    scope: Scope
    prefix: str
    created_at: datetime
    token: str = Field(
        description="The bearer token. Shown only in this response: store it now.",
        examples=["po_2XG0v5bO4m1c0bT4Xb9QeIGi6Zr6wq7Jc3bL4m2fN0s"],
    )
