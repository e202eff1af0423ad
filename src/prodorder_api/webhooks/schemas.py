import uuid
from datetime import datetime
from typing import Literal

from pydantic import Field, field_validator
from typing_extensions import TypeAliasType

from prodorder_api.events.schemas import EventType
from prodorder_api.fields import RequestModel, ResponseModel
from prodorder_api.webhooks import signing

EventWildcard = TypeAliasType("EventWildcard", Literal["*", "production_order.*", "stock.*"])
EventFilter = EventType | EventWildcard
WebhookStatus = TypeAliasType("WebhookStatus", Literal["active", "failing", "disabled"])
SubscriptionStatus = WebhookStatus
WebhookSwitch = TypeAliasType("WebhookSwitch", Literal["active", "disabled"])
DeliveryStatus = TypeAliasType("DeliveryStatus", Literal["pending", "succeeded", "failed"])

URL_FIELD = Field(
    min_length=1,
    max_length=2000,
    description="Where events are POSTed: `https://`, without credentials (`user:pass@`), "
    "to a valid host name or IP address that is not loopback, private, link-local or "
    "metadata, nor an IPv6 form carrying one (checked now and on every delivery, after DNS "
    "resolution).",
    examples=["https://erp.example.com/hooks/prodorder"],
)
EVENTS_FIELD = Field(
    min_length=1,
    max_length=20,
    description="Event types to deliver; `*` for all, `production_order.*` or `stock.*` for "
    "a family.",
    examples=[["production_order.completed", "stock.changed"]],
)


def _distinct(values: list[str] | None) -> list[str] | None:
    return None if values is None else sorted(set(values))


class WebhookCreate(RequestModel):
    url: str = URL_FIELD
    events: list[EventFilter] = EVENTS_FIELD
    secret: str | None = Field(
        default=None,
        max_length=200,
        description="Your own signing secret, `whsec_` + base64 of 24–64 random bytes. "
        "Default: one is generated. Returned once, in this response.",
    )

    _distinct_events = field_validator("events")(_distinct)

    @field_validator("secret")
    @classmethod
    def _standard_secret(cls, value: str | None) -> str | None:
        if value is not None:
            signing.key_of(value)  # ValueError → 422 with the reason, never the secret
        return value


class WebhookUpdate(RequestModel):
    """Change the URL or the event types, or pause and resume deliveries."""

    url: str | None = Field(
        default=None, min_length=1, max_length=2000, description="As for `POST /v1/webhooks`."
    )
    events: list[EventFilter] | None = Field(default=None, min_length=1, max_length=20)
    status: WebhookSwitch | None = Field(
        default=None,
        description="`disabled` pauses deliveries (pending ones wait, new events are not "
        "queued); `active` resumes with events from then on, and clears `failing`.",
    )

    _distinct_events = field_validator("events")(_distinct)


class WebhookOut(ResponseModel):
    id: uuid.UUID
    url: str
    events: list[str]
    status: WebhookStatus = Field(
        description="`failing` once a delivery ran out of attempts (deliveries go on; the next "
        "success makes it `active` again); `disabled` when paused."
    )
    created_at: datetime
    updated_at: datetime


class WebhookCreated(WebhookOut):
    secret: str = Field(
        description="The signing secret. Shown only in this response: store it now.",
        examples=["whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"],
    )


class AttemptOut(ResponseModel):
    attempt: int = Field(description="1 for the first try.")
    at: datetime
    status_code: int | None = Field(description="The receiver's HTTP status, if it answered.")
    error: str | None = Field(description="Why there was no answer: timeout, refused, …")
    duration_ms: int


class DeliveryOut(ResponseModel):
    id: uuid.UUID
    event_id: uuid.UUID = Field(description="Also the `webhook-id` header.")
    event_type: str
    status: DeliveryStatus
    next_attempt_at: datetime | None = Field(description="When pending: the next try.")
    created_at: datetime
    delivered_at: datetime | None
    attempts: list[AttemptOut] = Field(description="Every try, oldest first.")
