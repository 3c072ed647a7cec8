// A real OpenID Provider (panva/oidc-provider 8.x) on loopback for the single sign-on tests.
//
// Its development interactions accept any login and password, then ask for consent. The login
// typed is the account: `email` is the part before any "#" (so "a@x.org#2" is another `sub` for
// the same address) and `email_verified` is false when the login starts with "unverified:".
// Configured by the pytest fixture through the environment:
//   PROVIDER_PORT, PROVIDER_JWKS_FILE (private JWKS the ID tokens are signed with),
//   PROVIDER_CLIENT_ID, PROVIDER_CLIENT_SECRET,
//   PROVIDER_ID_TOKEN_TTL (seconds; negative issues ID tokens that are already expired).
import { readFileSync } from 'node:fs';

import Provider from 'oidc-provider';

const env = (name) => {
  const value = process.env[name];
  if (value === undefined) throw new Error(`${name} is not set`);
  return value;
};

const port = Number(env('PROVIDER_PORT'));
const issuer = `http://127.0.0.1:${port}`;
const idTokenTtl = Number(process.env.PROVIDER_ID_TOKEN_TTL || '3600');

function claimsOf(login) {
  const unverified = login.startsWith('unverified:');
  const address = (unverified ? login.slice('unverified:'.length) : login).split('#')[0];
  const local = address.split('@')[0];
  return {
    sub: login,
    email: address,
    email_verified: !unverified,
    name: `${local} Tester`,
    given_name: local,
    family_name: 'Tester',
  };
}

const provider = new Provider(issuer, {
  clients: [{
    client_id: env('PROVIDER_CLIENT_ID'),
    client_secret: env('PROVIDER_CLIENT_SECRET'),
    // "native" lets a loopback http redirect URI match on any port, so the servers of each
    // test database can share this client.
    application_type: 'native',
    redirect_uris: ['http://127.0.0.1/auth/oidc/callback'],
    grant_types: ['authorization_code'],
    response_types: ['code'],
    token_endpoint_auth_method: 'client_secret_basic',
  }],
  jwks: JSON.parse(readFileSync(env('PROVIDER_JWKS_FILE'), 'utf8')),
  cookies: { keys: ['test-provider-cookie-key'] },
  claims: { openid: ['sub'], email: ['email', 'email_verified'], profile: ['name', 'given_name', 'family_name'] },
  // Put the scope's claims in the ID token (as Google and Okta do) rather than only in userinfo.
  conformIdTokenClaims: false,
  pkce: { required: () => true },
  // A function, because the provider refuses a non-positive number; negative tests expiry.
  ttl: { IdToken: function idTokenTtlSeconds() { return idTokenTtl; } },
  findAccount: async (ctx, id) => ({
    accountId: id,
    claims: async () => claimsOf(id),
  }),
});

provider.listen(port, '127.0.0.1', () => {
  process.stdout.write(`listening ${issuer}\n`);
});
