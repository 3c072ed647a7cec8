"""`avara-viewer sso configure`: a clinic connected to a real OpenID Provider, the secret kept
encrypted, the change audited without it, and every bad input refused by name."""

from __future__ import annotations

import csv
import io
import uuid

from sso.provider_support import OpenIdProvider
from support import Server


def _clinic(server: Server, name: str = "SSO Clinic") -> str:
    return server.cli("clinics", "create", "--name", name).stdout.strip().splitlines()[-1]


def _domain() -> str:
    return f"h{uuid.uuid4().hex[:10]}.example"


def _configure(server: Server, provider: OpenIdProvider, clinic_id: str, *extra: str, **kw: str):
    args = {
        "--clinic": clinic_id,
        "--issuer": kw.get("issuer", provider.issuer),
        "--client-id": kw.get("client_id", provider.client_id),
        "--client-secret": kw.get("client_secret", provider.client_secret),
    }
    flat = [item for pair in args.items() for item in pair]
    return server.cli("sso", "configure", *flat, *extra, check=False)


def test_configure_connects_a_clinic_and_prints_the_redirect_uri(
    server: Server, openid_provider: OpenIdProvider
) -> None:
    clinic_id = _clinic(server)
    domain = _domain()
    result = _configure(
        server,
        openid_provider,
        clinic_id,
        "--domain",
        domain,
        "--domain",
        "@Sub." + domain,
        "--require",
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout == "http://viewer.test/auth/oidc/callback\n"
    [(issuer, client_id, sealed, required)] = server.sql(
        "SELECT issuer, client_id, client_secret_sealed, required FROM sso_connections "
        f"WHERE clinic_id = '{clinic_id}'"
    )
    assert (issuer, client_id, bool(required)) == (
        openid_provider.issuer,
        openid_provider.client_id,
        True,
    )
    assert sealed.startswith("v1.") and openid_provider.client_secret not in sealed
    domains = server.sql(f"SELECT domain FROM sso_domains WHERE clinic_id = '{clinic_id}'")
    assert sorted(d for (d,) in domains) == sorted([domain, "sub." + domain])

    exported = server.cli("audit", "export", "--clinic", clinic_id, "--since", "2000-01-01")
    rows = list(csv.DictReader(io.StringIO(exported.stdout)))
    [entry] = [r for r in rows if r["action"] == "clinic.sso_configured"]
    assert openid_provider.issuer in entry["changes"] and domain in entry["changes"]
    assert openid_provider.client_secret not in exported.stdout


def test_reconfiguring_replaces_the_domains_and_keeps_one_connection(
    server: Server, openid_provider: OpenIdProvider
) -> None:
    clinic_id = _clinic(server)
    first, second = _domain(), _domain()
    assert _configure(server, openid_provider, clinic_id, "--domain", first).returncode == 0
    assert _configure(server, openid_provider, clinic_id, "--domain", second).returncode == 0
    assert server.sql(f"SELECT domain FROM sso_domains WHERE clinic_id = '{clinic_id}'") == [
        (second,)
    ]
    assert server.sql(f"SELECT count(*) FROM sso_connections WHERE clinic_id = '{clinic_id}'") == [
        (1,)
    ]


def test_a_domain_of_another_clinic_is_refused(
    server: Server, openid_provider: OpenIdProvider
) -> None:
    domain = _domain()
    assert _configure(server, openid_provider, _clinic(server), "--domain", domain).returncode == 0
    other = _clinic(server, "Other Clinic")
    result = _configure(server, openid_provider, other, "--domain", domain)
    assert result.returncode == 1
    assert domain in result.stderr and "another clinic" in result.stderr
    assert server.sql(f"SELECT count(*) FROM sso_connections WHERE clinic_id = '{other}'") == [(0,)]


def test_bad_settings_are_refused_by_name(server: Server, openid_provider: OpenIdProvider) -> None:
    clinic_id = _clinic(server)
    plain_http = _configure(
        server,
        openid_provider,
        clinic_id,
        "--domain",
        _domain(),
        issuer="http://idp.hospital.example",
    )
    assert plain_http.returncode == 1 and "https" in plain_http.stderr
    bad_domain = _configure(server, openid_provider, clinic_id, "--domain", "not a domain")
    assert bad_domain.returncode == 1
    assert "domains" in bad_domain.stderr and "not a domain" in bad_domain.stderr
    empty_secret = _configure(
        server, openid_provider, clinic_id, "--domain", _domain(), client_secret=" "
    )
    assert empty_secret.returncode == 1 and "clientSecret" in empty_secret.stderr
    unknown = _configure(
        server, openid_provider, "00000000-0000-4000-8000-000000000000", "--domain", _domain()
    )
    assert unknown.returncode == 1 and "No clinic" in unknown.stderr
    assert server.sql(f"SELECT count(*) FROM sso_connections WHERE clinic_id = '{clinic_id}'") == [
        (0,)
    ]


def test_an_issuer_that_does_not_answer_discovery_is_refused(
    server: Server, openid_provider: OpenIdProvider
) -> None:
    clinic_id = _clinic(server)
    wrong_path = _configure(
        server,
        openid_provider,
        clinic_id,
        "--domain",
        _domain(),
        issuer=openid_provider.issuer + "/nothing-here",
    )
    assert wrong_path.returncode == 1 and "discovery document" in wrong_path.stderr
    other_name = _configure(
        server,
        openid_provider,
        clinic_id,
        "--domain",
        _domain(),
        issuer=openid_provider.issuer.replace("127.0.0.1", "localhost"),
    )
    assert other_name.returncode == 1 and "names issuer" in other_name.stderr
