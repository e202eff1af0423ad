import uuid
from datetime import datetime

from pydantic import Field

from prodorder_api.fields import Code, Name, RequestModel, ResponseModel


class LocationCreate(RequestModel):
    code: Code = Field(examples=["WH2"])
    name: Name = Field(examples=["Second warehouse"])


class LocationOut(ResponseModel):
    id: uuid.UUID
    code: str
    name: str
    created_at: datetime
