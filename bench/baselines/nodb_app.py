"""Baseline: the same FastAPI app doing no database work (validation and a 201 only)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Literal

from fastapi import FastAPI
from pydantic import BaseModel, ConfigDict, EmailStr
from pydantic.alias_generators import to_camel


class Invite(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, extra="forbid")
    can_manage_studies: bool
    clinic_role: str
    email: EmailStr
    first_name: str
    has_dashboard_access: bool
    last_name: str
    level: Literal["admin", "member"]
    middle_name: str | None = None
    phone_number: str | None = None
    suffix1: str | None = None
    suffix2: str | None = None


class UserOut(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True)
    user_id: str
    email: str
    first_name: str
    last_name: str
    clinic_role: str
    level: str
    can_manage_studies: bool
    has_dashboard_access: bool
    created_at: datetime


app = FastAPI()


@app.post("/v1/viewer/users", status_code=201, response_model=UserOut, response_model_by_alias=True)
async def invite(body: Invite) -> UserOut:
    return UserOut(
        user_id="usr_" + uuid.uuid4().hex, email=body.email, first_name=body.first_name,
        last_name=body.last_name, clinic_role=body.clinic_role, level=body.level,
        can_manage_studies=body.can_manage_studies,
        has_dashboard_access=body.has_dashboard_access, created_at=datetime.now(UTC),
    )
