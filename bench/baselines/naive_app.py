"""Baseline: the invite call as a typical FastAPI + SQLAlchemy-ORM app would write it.

A pydantic body model with EmailStr, an async ORM session per request, a user row and an
outbox row in one transaction, default pool. Database from BENCH_DATABASE_URL; on SQLite,
WAL with BENCH_SQLITE_SYNCHRONOUS (default FULL). Not part of the product.
"""

from __future__ import annotations

import os
import uuid
from datetime import UTC, datetime
from typing import Literal

from fastapi import Depends, FastAPI, HTTPException
from pydantic import BaseModel, ConfigDict, EmailStr
from pydantic.alias_generators import to_camel
from sqlalchemy import Boolean, DateTime, String, Text, event
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

URL = os.environ["BENCH_DATABASE_URL"]
engine = create_async_engine(URL)
if URL.startswith("sqlite"):
    synchronous = os.environ.get("BENCH_SQLITE_SYNCHRONOUS", "FULL")

    @event.listens_for(engine.sync_engine, "connect")
    def _pragmas(conn, _record):  # type: ignore[no-untyped-def]
        cur = conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute(f"PRAGMA synchronous={synchronous}")
        cur.execute("PRAGMA busy_timeout=10000")
        cur.close()


Session = async_sessionmaker(engine, expire_on_commit=False)


class Base(DeclarativeBase):
    pass


class User(Base):
    __tablename__ = "naive_users"
    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    email: Mapped[str] = mapped_column(String(320), unique=True)
    first_name: Mapped[str] = mapped_column(String(100))
    last_name: Mapped[str] = mapped_column(String(100))
    clinic_role: Mapped[str] = mapped_column(String(40))
    level: Mapped[str] = mapped_column(String(10))
    can_manage_studies: Mapped[bool] = mapped_column(Boolean)
    has_dashboard_access: Mapped[bool] = mapped_column(Boolean)
    created_at: Mapped[datetime] = mapped_column(DateTime)


class Outbox(Base):
    __tablename__ = "naive_outbox"
    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    recipient: Mapped[str] = mapped_column(String(320))
    body: Mapped[str] = mapped_column(Text)


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


async def session() -> AsyncSession:  # type: ignore[misc]
    async with Session() as s:
        yield s


app = FastAPI()


@app.on_event("startup")
async def create_tables() -> None:
    async with engine.begin() as conn:
        await conn.run_sync(Base.metadata.create_all)


@app.post("/v1/viewer/users", status_code=201, response_model=UserOut, response_model_by_alias=True)
async def invite(body: Invite, db: AsyncSession = Depends(session)) -> UserOut:
    user = User(
        id="usr_" + uuid.uuid4().hex, email=body.email, first_name=body.first_name,
        last_name=body.last_name, clinic_role=body.clinic_role, level=body.level,
        can_manage_studies=body.can_manage_studies,
        has_dashboard_access=body.has_dashboard_access,
        created_at=datetime.now(UTC).replace(tzinfo=None),
    )
    db.add(user)
    db.add(Outbox(id=str(uuid.uuid4()), recipient=body.email, body="invitation"))
    try:
        await db.commit()
    except Exception:
        await db.rollback()
        raise HTTPException(409, "email exists") from None
    return UserOut(
        user_id=user.id, email=user.email, first_name=user.first_name, last_name=user.last_name,
        clinic_role=user.clinic_role, level=user.level, can_manage_studies=user.can_manage_studies,
        has_dashboard_access=user.has_dashboard_access, created_at=user.created_at,
    )
