"""The web dashboard: server-rendered pages for invitees, members, admins and owners."""

from __future__ import annotations

from fastapi import FastAPI
from starlette.staticfiles import StaticFiles


def mount(app: FastAPI) -> None:
    """Add the dashboard's pages, the API's /docs, the static files and the security headers
    to the app (FastAPI's own /docs, which loads from a CDN, is turned off in app.py)."""
    from . import (
        account_pages,
        admin,
        api_docs,
        audit_pages,
        clinic_pages,
        invite_pages,
        public,
        settings_pages,
        signin,
        webhook_pages,
    )
    from .web import STATIC, SecurityHeaders

    app.include_router(public.router)
    app.include_router(signin.router)
    app.include_router(account_pages.router)
    app.include_router(settings_pages.router)
    # Before admin: /users/new and /users/bulk must win over /users/{user_id}.
    app.include_router(invite_pages.router)
    app.include_router(admin.router)
    app.include_router(clinic_pages.router)
    app.include_router(audit_pages.router)
    app.include_router(api_docs.router)
    app.include_router(webhook_pages.router)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    app.add_middleware(SecurityHeaders)
