"""The `avara-viewer` command: serve, worker, migrate, and the operator's bootstrap commands."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console

from .config import Settings

app = typer.Typer(no_args_is_help=True, help="Avara Viewer: user management for imaging clinics.")
clinics_app = typer.Typer(no_args_is_help=True, help="Manage clinics.")
keys_app = typer.Typer(no_args_is_help=True, help="Manage API keys.")
owners_app = typer.Typer(no_args_is_help=True, help="Invite clinic owners, revoke their access.")
app.add_typer(clinics_app, name="clinics")
app.add_typer(keys_app, name="api-keys")
app.add_typer(owners_app, name="owners")
users_app = typer.Typer(no_args_is_help=True, help="Onboard users in bulk.")
audit_app = typer.Typer(no_args_is_help=True, help="Verify and export the audit trail.")
scim_tokens_app = typer.Typer(no_args_is_help=True, help="Manage SCIM tokens (identity providers).")
scim_app = typer.Typer(no_args_is_help=True, help="A clinic's SCIM provisioning settings.")
app.add_typer(scim_tokens_app, name="scim-tokens")
app.add_typer(scim_app, name="scim")
app.add_typer(users_app, name="users")
app.add_typer(audit_app, name="audit")
sso_app = typer.Typer(no_args_is_help=True, help="Single sign-on (OpenID Connect) per clinic.")
app.add_typer(sso_app, name="sso")

err = Console(stderr=True)
T = TypeVar("T")


def _settings() -> Settings:
    try:
        return Settings()
    except Exception as exc:  # pydantic's message names the bad setting
        err.print(f"[red]Invalid settings:[/red] {exc}")
        raise typer.Exit(2) from None


def _with_db(settings: Settings, work: Callable[[Any], Awaitable[T]]) -> T:
    from .db import open_database

    async def main() -> T:
        db = open_database(settings)
        # Through the writer (on SQLite: BEGIN IMMEDIATE), so a command that reads before it
        # writes never loses the race for the write lock to a running server.
        await db.start()
        try:
            return await db.write(work)
        finally:
            await db.close()

    return asyncio.run(main())


def _fail(message: str) -> None:
    err.print(f"[red]Error:[/red] {message}")
    raise typer.Exit(1)


@app.command()
def migrate() -> None:
    """Create or upgrade the database schema."""
    from .migrate import upgrade

    settings = _settings()
    upgrade(settings)
    err.print(f"Database is up to date ({_describe_db(settings)}).")


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port.")] = 8000,
    no_email: Annotated[
        bool,
        typer.Option(
            "--no-email",
            help="Do not deliver email or webhooks from this process (run `worker` instead).",
        ),
    ] = False,
) -> None:
    """Serve the API and the dashboard, and deliver email and webhooks (unless --no-email)."""
    import uvicorn

    from .app import create_app
    from .ops.http import BoundedHttpToolsProtocol
    from .ops.logs import configure

    settings = _settings()
    configure(settings.log_format or "json")
    BoundedHttpToolsProtocol.head_timeout = settings.http_head_timeout
    application = create_app(settings, deliver_email=not no_email)
    # Request heads are bounded and timed by BoundedHttpToolsProtocol; bodies by the JSON
    # reader (64 KiB). Slow clients beyond that are a reverse proxy's job: see
    # docs/reliability.md.
    uvicorn.run(
        application,
        host=host,
        port=port,
        http=BoundedHttpToolsProtocol,
        access_log=False,  # the request middleware writes the access log, with request ids
        log_config=None,
        log_level="info",
        # X-Forwarded-For only from the proxies the operator names; otherwise the peer
        # address is the client's (uvicorn would trust loopback by default).
        proxy_headers=settings.trusted_proxies is not None,
        forwarded_allow_ips=settings.trusted_proxies or "",
        server_header=False,
        limit_concurrency=settings.limit_concurrency,
        timeout_keep_alive=max(1, round(settings.http_keep_alive_timeout)),
        h11_max_incomplete_event_size=16 * 1024,
    )


@app.command()
def worker(
    metrics_port: Annotated[
        int | None,
        typer.Option(help="Serve this worker's Prometheus metrics (email outcomes) on this port."),
    ] = None,
) -> None:
    """Deliver queued email and webhooks only (run beside several `serve --no-email`
    processes)."""
    from . import aio
    from .context import delivery_loop
    from .db import open_database
    from .ops.heap import freeze_startup_heap
    from .ops.logs import configure
    from .webhooks.delivery import WebhookLoop

    settings = _settings()
    configure(settings.log_format or "json")
    if metrics_port is not None:
        from prometheus_client import start_http_server

        from .ops.metrics import registry

        start_http_server(metrics_port, addr="127.0.0.1", registry=registry)

    async def main() -> None:
        db = open_database(settings)
        await db.start()
        freeze_startup_heap()
        tasks = [
            asyncio.create_task(delivery_loop(settings, db).run()),
            asyncio.create_task(WebhookLoop(settings, db).run()),
        ]
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await stop.wait()
        for task in tasks:
            await aio.stop(task)
        await db.close()

    asyncio.run(main())


@app.command()
def backup(
    output: Annotated[Path, typer.Option(help="File to write the copy of the database to.")],
) -> None:
    """Copy the SQLite database to a file, safely while the server runs (online backup)."""
    from .ops.backup import backup_sqlite

    settings = _settings()
    if not settings.is_sqlite:
        _fail("backup copies the embedded SQLite store; back up PostgreSQL with pg_dump.")
    source = Path(settings.resolved_database_url.split(":///", 1)[1])
    try:
        result = backup_sqlite(source, output)
    except (OSError, RuntimeError) as exc:
        _fail(str(exc))
        return
    counts = ", ".join(f"{n} {table}" for table, n in result.rows.items())
    err.print(f"Backed up {source} to {result.path} ({result.bytes} bytes: {counts}).")
    typer.echo(str(result.path))


@clinics_app.command("create")
def clinics_create(
    name: Annotated[str, typer.Option(help="The clinic's name, as invitees will see it.")],
) -> None:
    """Create a clinic; prints its id alone on the last line."""
    from .clinics.service import create_clinic
    from .clock import utcnow
    from .fields import NAME_MAX, check_name

    try:
        # The clinic's name is shown in every invitation: the rule of people's names.
        name = check_name(name, NAME_MAX)
    except ValueError as exc:
        _fail(f"--name {exc}.")
    settings = _settings()
    clinic_id = _with_db(settings, lambda conn: create_clinic(conn, name, utcnow()))
    err.print(f"Created clinic [bold]{name}[/bold].")
    typer.echo(clinic_id)


@keys_app.command("create")
def api_keys_create(
    clinic: Annotated[str, typer.Option(help="The clinic id.")],
    description: Annotated[str, typer.Option(help="What the key is for.")] = "",
) -> None:
    """Create an API key for a clinic; prints the secret once, alone on the last line."""
    from .clinics.service import create_api_key
    from .clock import utcnow
    from .errors import NotFound

    settings = _settings()
    try:
        key = _with_db(
            settings,
            lambda conn: create_api_key(
                conn, settings.resolved_secret_key, clinic, description, utcnow()
            ),
        )
    except NotFound as exc:
        _fail(exc.detail)
        return
    err.print(f"Created API key {key.id}. Store the secret now: it is not shown again.")
    typer.echo(key.secret)


@scim_tokens_app.command("create")
def scim_tokens_create(
    clinic: Annotated[str, typer.Option(help="The clinic id.")],
    description: Annotated[str, typer.Option(help="What the token is for.")] = "",
) -> None:
    """Create a SCIM token for a clinic; prints it once, alone on the last line."""
    from .clock import utcnow
    from .errors import NotFound
    from .scim import tokens

    settings = _settings()
    try:
        made = _with_db(
            settings,
            lambda conn: tokens.create(
                conn, settings.resolved_secret_key, clinic, description.strip(), utcnow()
            ),
        )
    except NotFound as exc:
        _fail(exc.detail)
        return
    err.print(
        f"Created SCIM token {made.id}. Base URL: {settings.public_url}/scim/v2. "
        "Store the token now: it is not shown again."
    )
    typer.echo(made.token)


@scim_tokens_app.command("list")
def scim_tokens_list(clinic: Annotated[str, typer.Option(help="The clinic id.")]) -> None:
    """List a clinic's SCIM tokens: id, created, revoked, description (tab-separated)."""
    from .clock import rfc3339
    from .scim import tokens

    for row in _with_db(_settings(), lambda conn: tokens.list_for_clinic(conn, clinic)):
        revoked = rfc3339(row.revoked_at) or "-"
        typer.echo(f"{row.id}\t{rfc3339(row.created_at)}\t{revoked}\t{row.description}")


@scim_tokens_app.command("revoke")
def scim_tokens_revoke(token_id: Annotated[str, typer.Argument(help="The token's id.")]) -> None:
    """Revoke a SCIM token: the identity provider using it is refused (within a second)."""
    from .clock import utcnow
    from .errors import NotFound
    from .scim import tokens

    try:
        _with_db(_settings(), lambda conn: tokens.revoke(conn, token_id, utcnow()))
    except NotFound as exc:
        _fail(exc.detail)
    err.print(f"Revoked SCIM token {token_id}.")


@scim_app.command("configure")
def scim_configure(
    clinic: Annotated[str, typer.Option(help="The clinic id.")],
    activate_without_email: Annotated[
        bool | None,
        typer.Option(
            "--activate-without-email/--send-invitations",
            help="Make SCIM people active at once (SSO clinics), or invite them by email.",
        ),
    ] = None,
    default_clinic_role: Annotated[
        str | None, typer.Option(help="clinicRole when the identity provider sends none.")
    ] = None,
    default_level: Annotated[
        str | None, typer.Option(help="level (admin or member) when none is sent.")
    ] = None,
    default_can_manage_studies: Annotated[
        bool | None, typer.Option("--default-can-manage-studies/--default-cannot-manage-studies")
    ] = None,
    default_dashboard_access: Annotated[
        bool | None, typer.Option("--default-dashboard-access/--default-no-dashboard-access")
    ] = None,
) -> None:
    """Change a clinic's SCIM settings; prints them all afterwards."""
    from .clock import utcnow
    from .errors import ProblemError
    from .scim import settings as scim_settings

    changes = {
        "activate_without_email": activate_without_email,
        "clinic_role": default_clinic_role,
        "level": default_level,
        "can_manage_studies": default_can_manage_studies,
        "has_dashboard_access": default_dashboard_access,
    }
    try:
        saved = _with_db(
            _settings(),
            lambda conn: scim_settings.configure(
                conn, clinic, {k: v for k, v in changes.items() if v is not None}, utcnow()
            ),
        )
    except ProblemError as exc:
        details = "; ".join(f"{e['field']}: {e['message']}" for e in exc.errors or [])
        _fail(f"{exc.detail} {details}".strip())
        return
    for name, value in saved.items():
        typer.echo(f"{name}={value}")


@scim_app.command("map-group")
def scim_map_group(
    clinic: Annotated[str, typer.Option(help="The clinic id.")],
    group: Annotated[str, typer.Option(help="The group's displayName, as the IdP sends it.")],
    level: Annotated[
        str, typer.Option(help="admin: members become admins; none: membership gives no level.")
    ] = "none",
    clinic_role: Annotated[
        str, typer.Option(help="The clinicRole membership gives (none: keep each person's).")
    ] = "none",
) -> None:
    """Say what membership of a SCIM group gives, and apply it to its present members."""
    from .clock import utcnow
    from .errors import ProblemError
    from .scim import groups
    from .scim.errors import ScimError

    settings = _settings()
    try:
        _with_db(
            settings,
            lambda conn: groups.map_group(
                conn,
                settings,
                clinic,
                group,
                None if level == "none" else level,
                None if clinic_role == "none" else clinic_role,
                utcnow(),
            ),
        )
    except ProblemError as exc:
        _fail(exc.detail)
    except ScimError as exc:
        _fail(exc.detail)
    err.print(f"Members of {group!r} get level={level}, clinicRole={clinic_role}.")


@owners_app.command("invite")
def owners_invite(
    clinic: Annotated[str, typer.Option(help="The clinic id.")],
    email: Annotated[str, typer.Option(help="The owner's email address.")],
    first_name: Annotated[str, typer.Option(help="First name.")],
    last_name: Annotated[str, typer.Option(help="Last name.")],
    clinic_role: Annotated[str, typer.Option(help="Clinic role.")] = "Administrative Director",
) -> None:
    """Invite a clinic owner (the only way to create one); prints the user id."""
    from . import flows
    from .clock import utcnow
    from .errors import ProblemError
    from .fields import validate
    from .users.schemas import UserInviteRequest

    settings = _settings()
    try:
        request = validate(
            UserInviteRequest,
            {
                "email": email,
                "firstName": first_name,
                "lastName": last_name,
                "clinicRole": clinic_role,
                "level": "admin",
                "canManageStudies": True,
                "hasDashboardAccess": True,
            },
        )

        row = _with_db(
            settings,
            lambda conn: flows.invite_owner(conn, settings, clinic, request, now=utcnow()),
        )
    except ProblemError as exc:
        details = "; ".join(f"{e['field']}: {e['message']}" for e in exc.errors or [])
        _fail(f"{exc.detail} {details}".strip())
        return
    err.print(f"Invited owner {row['email']}; the invitation email is queued.")
    typer.echo(row["id"])


@owners_app.command("revoke")
def owners_revoke(
    clinic: Annotated[str, typer.Option(help="The clinic id.")],
    user: Annotated[str, typer.Option(help="The owner's user id.")],
) -> None:
    """Revoke an owner's access: owners are changed only here. Refused when they are the
    clinic's only active owner (invite another one first)."""
    _owner_action(clinic, user, "revoke")


@owners_app.command("reactivate")
def owners_reactivate(
    clinic: Annotated[str, typer.Option(help="The clinic id.")],
    user: Annotated[str, typer.Option(help="The owner's user id.")],
) -> None:
    """Give a revoked owner their access back."""
    _owner_action(clinic, user, "reactivate")


def _owner_action(clinic: str, user: str, action: str) -> None:
    from . import flows
    from .actor import Actor
    from .clock import utcnow
    from .errors import ProblemError

    settings = _settings()
    actor = Actor(clinic_id=clinic, kind="cli", id=None)
    operation = flows.revoke_access if action == "revoke" else flows.reactivate
    try:
        message = _with_db(
            settings, lambda conn: operation(conn, settings, actor, user, now=utcnow())
        )
    except ProblemError as exc:
        _fail(exc.detail)
        return
    err.print(message)


@app.command()
def demo() -> None:
    """First-run setup used by `make run`: a demo clinic, its API key and an owner invitation,
    printed with a ready-to-paste example."""
    from . import flows
    from .clinics.service import any_clinic_id, create_api_key, create_clinic
    from .clock import utcnow
    from .fields import validate
    from .users.schemas import UserInviteRequest

    settings = _settings()
    owner = validate(
        UserInviteRequest,
        {
            "email": DEMO_OWNER_EMAIL,
            "firstName": "Olivia",
            "lastName": "Owner",
            "clinicRole": "Administrative Director",
            "level": "admin",
            "canManageStudies": True,
            "hasDashboardAccess": True,
        },
    )

    async def work(conn: Any) -> tuple[str, str | None]:
        first = await any_clinic_id(conn)
        if first is not None:
            return first, None
        now = utcnow()
        clinic_id = await create_clinic(conn, "Demo Imaging Clinic", now)
        key = await create_api_key(
            conn, settings.resolved_secret_key, clinic_id, "demo key (make run)", now
        )
        await flows.invite_owner(conn, settings, clinic_id, owner, now=now)
        return clinic_id, key.secret

    clinic_id, secret = _with_db(settings, work)
    out = Console(soft_wrap=True, highlight=False)
    if secret is None:
        out.print(
            f"Data dir {settings.data_dir} already holds clinic {clinic_id}. API keys are stored "
            "only as hashes, so the demo key cannot be shown again; make a new one with:\n"
            f"  .venv/bin/avara-viewer api-keys create --clinic {clinic_id} --description mine"
        )
        return
    maildir = settings.data_dir / "maildir" / "new"
    out.print(f"[bold]Demo clinic:[/bold] {clinic_id}")
    out.print(f"[bold]API key (shown once):[/bold] {secret}")
    out.print("[bold]Try the seed call with curl:[/bold]")
    out.print(
        f"""curl -s {settings.public_url}/v1/viewer/users \\
  -H 'Authorization: Bearer {secret}' -H 'Content-Type: application/json' \\
  -d '{{"canManageStudies": true, "clinicRole": "Radiologist", "email": "dr.johnson@hospital.org",
       "firstName": "Sarah", "hasDashboardAccess": true, "lastName": "Johnson",
       "level": "member"}}'""",
        markup=False,
    )
    out.print("[bold]Or with the Python client:[/bold]")
    out.print(
        f"AVARA_API_KEY={secret} AVARA_BASE_URL={settings.public_url} .venv/bin/python -c "
        "'from avara import Avara; print(Avara().viewer.users.invite(can_manage_studies=True, "
        'clinic_role="Radiologist", email="dr.lee@hospital.org", first_name="Ana", '
        'has_dashboard_access=True, last_name="Lee", level="member"))\'',
        markup=False,
    )
    out.print(
        f"[bold]Dashboard:[/bold] the clinic's owner ({DEMO_OWNER_EMAIL}) was invited; open the "
        f"newest file in {maildir} (or `mutt -f {settings.data_dir / 'maildir'}`) once the "
        "server is up and follow its link to set a password: accepting signs you in to "
        f"the dashboard (later, sign in at {settings.public_url}/login)."
    )
    maildir_root = settings.data_dir / "maildir"
    out.print(f"Emails are written to {maildir_root} unless AVARA_VIEWER_SMTP_URL is set.")


DEMO_OWNER_EMAIL = "owner@demo-clinic.example"


@users_app.command("import")
def users_import(
    file: Annotated[
        Path, typer.Argument(help="CSV with the API's column names (email, firstName, ...).")
    ],
    clinic: Annotated[str, typer.Option(help="The clinic id.")],
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Check every row and report; invite nobody.")
    ] = False,
) -> None:
    """Invite every row of a CSV file; safe to re-run (existing addresses are reported).

    Exits 0 when no row failed, 1 otherwise."""
    from rich.progress import Progress
    from rich.table import Table

    from .bulk_invite import ImportFileError, read_rows, run_import
    from .clinics.service import clinic_name

    settings = _settings()
    try:
        rows = read_rows(file)
    except ImportFileError as exc:
        _fail(str(exc))
        return
    if _with_db(settings, lambda conn: clinic_name(conn, clinic)) is None:
        _fail(f"No clinic with id {clinic}.")
    with Progress(console=err, transient=False) as bar:
        task = bar.add_task("Checking" if dry_run else "Inviting", total=len(rows))
        results = asyncio.run(
            run_import(
                settings,
                clinic,
                rows,
                dry_run=dry_run,
                progress=lambda n: bar.advance(task, n),
            )
        )
    table = Table("row", "email", "result", "field", "message")
    for result in results:
        if not result.errors:
            table.add_row(str(result.row), result.email, result.outcome, "", "")
        for error in result.errors:
            table.add_row(
                str(result.row), result.email, result.outcome, error["field"], error["message"]
            )
    Console(width=160).print(table)
    counts: dict[str, int] = {}
    for result in results:
        counts[result.outcome] = counts.get(result.outcome, 0) + 1
    summary = ", ".join(f"{n} {outcome}" for outcome, n in sorted(counts.items())) or "no rows"
    err.print(f"{'Dry run: ' if dry_run else ''}{summary}.")
    if counts.get("failed"):
        raise typer.Exit(1)


@audit_app.command("verify")
def audit_verify(
    clinic: Annotated[
        str | None, typer.Option(help="Verify one clinic (default: every clinic).")
    ] = None,
) -> None:
    """Recompute the audit hash chains; exit 1 naming the first broken entry of a clinic."""
    from .audit import service as audit

    settings = _settings()
    result = _with_db(settings, lambda conn: audit.verify(conn, clinic))
    if result.breaks:
        for broken in result.breaks:
            err.print(f"[red]Broken:[/red] {broken}")
        raise typer.Exit(1)
    err.print(f"Audit trail intact: {result.entries} entries in {result.clinics} clinic(s).")


@audit_app.command("export")
def audit_export(
    clinic: Annotated[str, typer.Option(help="The clinic id.")],
    since: Annotated[str, typer.Option(help="First day to include (YYYY-MM-DD, UTC).")],
    output: Annotated[
        Path | None, typer.Option(help="CSV file to write (default: standard output).")
    ] = None,
) -> None:
    """Write the clinic's audit entries since a day as CSV, oldest first."""
    import re
    import sys
    from datetime import UTC, datetime

    from .audit import service as audit

    if not re.fullmatch(r"\d{4}-\d{2}-\d{2}", since):
        _fail("--since must be a date as YYYY-MM-DD.")
    try:
        start = datetime.strptime(since, "%Y-%m-%d").replace(tzinfo=UTC)
    except ValueError:
        _fail("--since must be a date as YYYY-MM-DD.")
        return
    settings = _settings()

    async def rows(conn: Any) -> list[dict[str, Any]]:
        return [audit.entry_wire(row) async for row in audit.iter_since(conn, clinic, start)]

    entries = _with_db(settings, rows)
    handle = output.open("w", newline="", encoding="utf-8") if output else sys.stdout
    try:
        audit.write_csv(handle, entries)
    finally:
        if output:
            handle.close()
    err.print(f"Exported {len(entries)} audit entries.")


@sso_app.command("configure")
def sso_configure(
    clinic: Annotated[str, typer.Option(help="The clinic id.")],
    issuer: Annotated[str, typer.Option(help="The provider's issuer URL (https).")],
    client_id: Annotated[str, typer.Option(help="The client id registered at the provider.")],
    client_secret: Annotated[str, typer.Option(help="The client secret (stored encrypted).")],
    domain: Annotated[
        list[str], typer.Option(help="An email domain of the clinic's people (repeatable).")
    ],
    require: Annotated[
        bool, typer.Option("--require", help="Passwords stop working (owners keep theirs).")
    ] = False,
    join_with_defaults: Annotated[
        bool,
        typer.Option(
            "--join-with-defaults",
            help="A verified address the clinic does not know joins as a member.",
        ),
    ] = False,
) -> None:
    """Connect a clinic to its OpenID Provider; prints the redirect URI to register there."""
    from .accounts import sso
    from .accounts.oidc import OidcError, RelyingParty
    from .actor import Actor
    from .clock import utcnow
    from .db import open_database
    from .errors import ProblemError

    settings = _settings()
    request = sso.SsoRequest(
        issuer, client_id, client_secret, tuple(domain), require, join_with_defaults
    )

    async def main() -> sso.SsoSettings:
        db, relying_party = open_database(settings), RelyingParty()
        await db.start()
        try:
            actor = Actor(clinic_id=clinic, kind="cli", id=None)
            return await sso.configure_checked(
                db, relying_party, settings.resolved_secret_key, actor, request, utcnow()
            )
        finally:
            await relying_party.aclose()
            await db.close()

    try:
        configured = asyncio.run(main())
    except OidcError as exc:
        _fail(exc.message)
        return
    except ProblemError as exc:
        details = "; ".join(f"{e['field']}: {e['message']}" for e in exc.errors or [])
        _fail(f"{exc.detail} {details}".strip())
        return
    err.print(
        f"Single sign-on configured: {configured.issuer}, domains "
        f"{', '.join(configured.domains)}{', required' if configured.required else ''}. "
        "Register this redirect URI at the provider:"
    )
    typer.echo(f"{settings.public_url}/auth/oidc/callback")


def _describe_db(settings: Settings) -> str:
    url = settings.resolved_database_url
    if settings.is_sqlite:
        return url.split("///", 1)[-1]
    head, _, tail = url.rpartition("@")
    return f"{head.split('://')[0]}://…@{tail}" if head else url
