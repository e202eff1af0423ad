import uuid
from datetime import datetime
from typing import Literal

from pydantic import Field, field_validator, model_validator
from typing_extensions import TypeAliasType

from prodorder_api.fields import (
    Code,
    DecimalOut,
    Name,
    NonNegativeDecimal,
    PositiveDecimal,
    RequestModel,
    ResponseModel,
    Text,
)
from prodorder_api.metadata import Metadata, metadata_field, metadata_out

# A named type, so the OpenAPI document has one enum `$ref` for generated clients.
Consumption = TypeAliasType("Consumption", Literal["backflush", "manual"])


class BomLineIn(RequestModel):
    component_item_id: uuid.UUID
    quantity: PositiveDecimal = Field(description="Per `output_quantity` of the product.")
    scrap_factor: NonNegativeDecimal = Field(
        default=0, description="Expected loss fraction: `0.05` requires 5 % extra."
    )
    consumption: Consumption = Field(
        default="backflush",
        description="`backflush`: consumed in proportion when output is reported; "
        "`manual`: issued with the consumptions action.",
    )

    @field_validator("scrap_factor")
    @classmethod
    def _scrap_below_ten(cls, value: object) -> object:
        if value is not None and value >= 10:  # type: ignore[operator]
            raise ValueError("must be less than 10")
        return value


class BomOperationIn(RequestModel):
    sequence: int = Field(ge=1, le=100_000)
    name: Name
    instructions: Text | None = None
    work_center_id: uuid.UUID | None = None
    setup_minutes: NonNegativeDecimal = Field(default=0, description="Once per order.")
    run_minutes: NonNegativeDecimal = Field(
        default=0, description="Per `output_quantity` of the product."
    )


class ByProductIn(RequestModel):
    item_id: uuid.UUID
    quantity: PositiveDecimal = Field(description="Per `output_quantity` of the product.")


class _BomContent(RequestModel):
    @model_validator(mode="after")
    def _distinct(self) -> "_BomContent":
        lines = getattr(self, "lines", None) or []
        components = [line.component_item_id for line in lines]
        if len(set(components)) != len(components):
            raise ValueError("lines: list each component once")
        operations = getattr(self, "operations", None) or []
        sequences = [op.sequence for op in operations]
        if len(set(sequences)) != len(sequences):
            raise ValueError("operations: sequences must be distinct")
        by_products = [b.item_id for b in getattr(self, "by_products", None) or []]
        if len(set(by_products)) != len(by_products):
            raise ValueError("by_products: list each item once")
        return self


class BomCreate(_BomContent):
    item_id: uuid.UUID = Field(description="The product this BOM makes.")
    revision: Code | None = Field(default=None, description="Default: the next number.")
    output_quantity: PositiveDecimal = Field(default=1, description="What one BOM makes.")
    lines: list[BomLineIn] = Field(min_length=1, max_length=1000)
    operations: list[BomOperationIn] = Field(default_factory=list, max_length=1000)
    by_products: list[ByProductIn] = Field(default_factory=list, max_length=100)
    default: bool | None = Field(
        default=None, description="Make it the item's default BOM (the first one always is)."
    )
    metadata: Metadata = metadata_field()


class BomUpdate(_BomContent):
    """Replace parts of a BOM no order has used yet (409 `conflict` once one has);
    `metadata` alone can change on any BOM."""

    revision: Code | None = None
    output_quantity: PositiveDecimal | None = None
    lines: list[BomLineIn] | None = Field(default=None, min_length=1, max_length=1000)
    operations: list[BomOperationIn] | None = Field(default=None, max_length=1000)
    by_products: list[ByProductIn] | None = Field(default=None, max_length=100)
    metadata: Metadata | None = None


class BomLineOut(ResponseModel):
    component_item_id: uuid.UUID
    quantity: DecimalOut
    scrap_factor: DecimalOut
    consumption: Consumption


class BomOperationOut(ResponseModel):
    sequence: int
    name: str
    instructions: str | None
    work_center_id: uuid.UUID | None
    setup_minutes: DecimalOut
    run_minutes: DecimalOut


class ByProductOut(ResponseModel):
    item_id: uuid.UUID
    quantity: DecimalOut


class BomOut(ResponseModel):
    id: uuid.UUID
    item_id: uuid.UUID
    revision: str
    output_quantity: DecimalOut
    default: bool = Field(validation_alias="is_default")
    used: bool = Field(description="An order has used it: it is immutable.")
    lines: list[BomLineOut]
    operations: list[BomOperationOut]
    by_products: list[ByProductOut]
    metadata: Metadata = metadata_out()
    version: int
    created_at: datetime
    updated_at: datetime


class ExplosionRow(ResponseModel):
    item_id: uuid.UUID
    level: int = Field(description="1 = a direct component; with `flat`, the deepest level.")
    quantity: DecimalOut = Field(description="Required quantity, scrap included.")
    made: bool = Field(description="The component has a default BOM of its own.")


class Explosion(ResponseModel):
    bom_id: uuid.UUID
    quantity: DecimalOut
    data: list[ExplosionRow]


class CostLine(ResponseModel):
    component_item_id: uuid.UUID
    quantity: DecimalOut
    unit_cost: DecimalOut
    cost: DecimalOut
    made: bool


class BomCost(ResponseModel):
    bom_id: uuid.UUID
    quantity: DecimalOut
    material_cost: DecimalOut
    lines: list[CostLine]
