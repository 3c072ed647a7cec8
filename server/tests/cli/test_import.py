"""`avara-viewer users import FILE.csv --clinic ID [--dry-run]`: bulk onboarding."""

from __future__ import annotations

from pathlib import Path

from support import Server, SmtpSink, unique_email

HEADER = (
    "email,firstName,lastName,middleName,suffix1,suffix2,phoneNumber,clinicRole,level,"
    "canManageStudies,hasDashboardAccess"
)


def _csv(tmp_path: Path, *rows: str) -> Path:
    path = tmp_path / "people.csv"
    path.write_text("\n".join([HEADER, *rows]) + "\n", encoding="utf-8")
    return path


def test_import_invites_reports_and_is_safe_to_rerun(
    server: Server, smtp_sink: SmtpSink, tmp_path: Path
) -> None:
    clinic = server.create_clinic("Import Clinic")
    good = [unique_email("imp") for _ in range(3)]
    path = _csv(
        tmp_path,
        f"{good[0]},Ann,Lee,,,,5551234567,Radiologist,member,yes,no",
        f"{good[1]},Bob,Ray,M,Jr.,,,Surgeon,admin,TRUE,1",
        f"{good[2]},Cy,Day,,,,,Other,member,0,false",
        "not-an-email,Dee,,,,,123,Wizard,owner,maybe,true",
        f"{good[0].upper()},Ann,Again,,,,,Radiologist,member,true,true",
    )
    first = server.cli("users", "import", str(path), "--clinic", clinic.id, check=False)
    assert first.returncode == 1, first.stderr
    report = first.stdout
    assert "3 invited" in first.stderr and "2 failed" in first.stderr
    for field in ("email", "lastName", "phoneNumber", "clinicRole", "level", "canManageStudies"):
        assert field in report, field
    assert "repeats row 2" in report
    users = clinic.client.get("/v1/viewer/users").json()["users"]
    assert sorted(u["email"] for u in users) == sorted(good)
    bob = next(u for u in users if u["firstName"] == "Bob")
    assert (bob["level"], bob["canManageStudies"], bob["hasDashboardAccess"]) == (
        "admin",
        True,
        True,
    )
    assert bob["middleName"] == "M" and bob["suffix1"] == "Jr."
    ann = next(u for u in users if u["firstName"] == "Ann")
    assert (ann["canManageStudies"], ann["hasDashboardAccess"], ann["phoneNumber"]) == (
        True,
        False,
        "5551234567",
    )
    assert {u["invitedSource"] for u in users} == {"dashboard"}
    smtp_sink.wait_for(good[2])
    actors = server.sql(
        f"SELECT DISTINCT actor_type, action FROM audit_log WHERE clinic_id = '{clinic.id}'"
    )
    assert actors == [("cli", "user.invited")]

    again = server.cli("users", "import", str(path), "--clinic", clinic.id, check=False)
    assert "3 already invited" in again.stderr
    assert len(clinic.client.get("/v1/viewer/users").json()["users"]) == 3


def test_a_clean_file_exits_0_and_dry_run_writes_nothing(server: Server, tmp_path: Path) -> None:
    clinic = server.create_clinic("Dry Run Clinic")
    path = _csv(
        tmp_path, *(f"{unique_email('dry')},P{i},Q,,,,,Doctor,member,no,no" for i in range(5))
    )
    dry = server.cli("users", "import", str(path), "--clinic", clinic.id, "--dry-run")
    assert "5 would invite" in dry.stderr
    assert clinic.client.get("/v1/viewer/users").json()["users"] == []
    real = server.cli("users", "import", str(path), "--clinic", clinic.id)
    assert real.returncode == 0
    assert len(clinic.client.get("/v1/viewer/users").json()["users"]) == 5


def test_a_bad_header_or_clinic_is_refused_before_any_row(server: Server, tmp_path: Path) -> None:
    clinic = server.create_clinic("Header Clinic")
    path = tmp_path / "bad.csv"
    path.write_text("email,first_name,lastName\nx@y.org,A,B\n")
    result = server.cli("users", "import", str(path), "--clinic", clinic.id, check=False)
    assert result.returncode == 1
    assert "first_name" in result.stderr and "firstName" in result.stderr
    good = _csv(tmp_path, f"{unique_email()},A,B,,,,,Doctor,member,no,no")
    unknown = server.cli(
        "users",
        "import",
        str(good),
        "--clinic",
        "00000000-0000-4000-8000-000000000000",
        check=False,
    )
    assert unknown.returncode == 1 and "No clinic" in unknown.stderr


def test_import_reads_semicolon_files_and_suggests_roles(
    server: Server, smtp_sink: SmtpSink, tmp_path: Path
) -> None:
    clinic = server.create_clinic("Semicolon Clinic")
    good, typo = unique_email("semi"), unique_email("typo")
    path = tmp_path / "people.csv"
    path.write_text(
        HEADER.replace(",", ";")
        + f"\n{good};Ann;Lee;;;;;Radiologist;member;yes;no\n"
        + f"{typo};Ty;Po;;;;;Radiolgist;member;no;no\n",
        encoding="utf-8",
    )
    result = server.cli("users", "import", str(path), "--clinic", clinic.id, check=False)
    assert "1 invited" in result.stderr and "1 failed" in result.stderr, result.stderr
    assert "did you mean “Radiologist”?" in result.stdout
    emails = [u["email"] for u in clinic.client.get("/v1/viewer/users").json()["users"]]
    assert emails == [good]
