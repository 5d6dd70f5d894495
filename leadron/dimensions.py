"""Dimension files of the input folder: their columns, row validation and Arrow schema.

Each file is a full snapshot (CSV with a header). Unknown extra columns are
ignored; a missing documented column rejects the file; empty cells are NULL.
"""

from __future__ import annotations

from functools import cache
from typing import Annotated, Any
from zoneinfo import available_timezones

import pyarrow as pa
from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field

from leadron.contract import Id, UtcTimestamp

TenantId = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[a-z0-9][a-z0-9_-]*$")]
Text = Annotated[str, Field(max_length=512)]


def _empty_is_none(value: Any) -> Any:
    return None if value == "" else value


@cache
def _zones() -> frozenset[str]:
    return frozenset(available_timezones())


def _iana(value: str) -> str:
    if value not in _zones():
        raise ValueError(f"unknown IANA timezone {value!r}")
    return value


Opt = lambda t: Annotated[t | None, BeforeValidator(_empty_is_none)]  # noqa: E731


class _Row(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class TenantRow(_Row):
    tenant_id: TenantId
    name: Text
    timezone: Annotated[str, AfterValidator(_iana)]


class TeamRow(_Row):
    tenant_id: TenantId
    team_id: Id
    name: Opt(Text) = None


class UserRow(_Row):
    tenant_id: TenantId
    user_id: Id
    name: Opt(Text) = None
    email: Opt(Annotated[str, Field(max_length=320, pattern=r"^[^@\s]+@[^@\s]+$")]) = None
    team_id: Opt(Id) = None


class LeadRow(_Row):
    tenant_id: TenantId
    lead_id: Id
    email: Opt(Annotated[str, Field(max_length=320, pattern=r"^[^@\s]+@[^@\s]+$")]) = None
    company: Opt(Text) = None
    source: Opt(Annotated[str, Field(max_length=64)]) = None
    owner_user_id: Opt(Id) = None
    created_at: Opt(UtcTimestamp) = None
    status: Opt(Annotated[str, Field(max_length=64)]) = None
    converted_at: Opt(UtcTimestamp) = None


class WorkflowRow(_Row):
    tenant_id: TenantId
    workflow_id: Id
    name: Opt(Text) = None


class WorkflowStepRow(_Row):
    tenant_id: TenantId
    workflow_id: Id
    step_number: Annotated[int, Field(ge=1, le=1000)]
    channel: Opt(Annotated[str, Field(max_length=64)]) = None
    delay_days: Opt(Annotated[int, Field(ge=0, le=3650)]) = None


class MessageRow(_Row):
    tenant_id: TenantId
    message_id: Id
    lead_id: Opt(Id) = None
    user_id: Opt(Id) = None
    workflow_id: Opt(Id) = None
    workflow_execution_id: Opt(Id) = None
    step_number: Opt(Annotated[int, Field(ge=1, le=1000)]) = None
    sent_at: Opt(UtcTimestamp) = None
    subject: Opt(Annotated[str, Field(max_length=998)]) = None


# name -> (row model, key columns). The file is `<name>.csv`; its raw table is `raw.<name>`.
DIMENSIONS: dict[str, tuple[type[_Row], tuple[str, ...]]] = {
    "tenants": (TenantRow, ("tenant_id",)),
    "teams": (TeamRow, ("tenant_id", "team_id")),
    "users": (UserRow, ("tenant_id", "user_id")),
    "leads": (LeadRow, ("tenant_id", "lead_id")),
    "workflows": (WorkflowRow, ("tenant_id", "workflow_id")),
    "workflow_steps": (WorkflowStepRow, ("tenant_id", "workflow_id", "step_number")),
    "messages": (MessageRow, ("tenant_id", "message_id")),
}

_INT_COLUMNS = {"step_number", "delay_days"}


def _arrow_type(column: str) -> pa.DataType:
    if column.endswith("_at"):
        return pa.timestamp("us")
    return pa.int32() if column in _INT_COLUMNS else pa.string()


def arrow_schema(name: str) -> pa.Schema:
    return pa.schema([(column, _arrow_type(column)) for column in columns(name)])


def columns(name: str) -> list[str]:
    return list(DIMENSIONS[name][0].model_fields)
