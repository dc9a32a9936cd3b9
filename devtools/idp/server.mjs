// A real OpenID Provider for the SSO tests and the local set-up: panva's OpenID-certified oidc-provider,
// configured here and nothing else written by us. Not for production.
//
//   node devtools/idp/server.mjs CONFIG.json
//
// CONFIG: {"port": 9001, "issuer": "http://127.0.0.1:9001", "kids": ["k1"],
//          "clients": [{"client_id": "...", "client_secret": "...", "redirect_uris": ["..."],
//                       "backchannel_logout_uri": "... (optional)"}],
//          "accounts": {"<login>": {"sub": "...", "email": "...", "email_verified": true}}}
//
// Sign-in is the provider's own development login page (features.devInteractions): any login name is accepted
// with any password. A login listed under "accounts" gets those claims; any other login is read as
// `email[;sub=SUB][;verified=false]` (the email is verified and the sub derived from it unless said otherwise),
// so tests can make as many distinct users as they need. Signing keys: one fresh RSA key per entry of "kids"
// (a restart with other kids is a key rotation). Prints "ready <issuer>" once it listens.
import { createHash, generateKeyPairSync, randomBytes } from 'node:crypto';
import { lookup } from 'node:dns';
import { readFileSync } from 'node:fs';

import Provider from 'oidc-provider';

const config = JSON.parse(readFileSync(process.argv[2], 'utf8'));

function claimsOf(login) {
  if (config.accounts && config.accounts[login]) return config.accounts[login];
  const [email, ...options] = login.split(';');
  const claims = {
    sub: `sub-${createHash('sha256').update(email).digest('hex').slice(0, 24)}`,
    email,
    email_verified: true,
  };
  for (const option of options) {
    const [key, value] = option.split('=');
    if (key === 'sub') claims.sub = value;
    if (key === 'verified') claims.email_verified = value !== 'false';
  }
  return claims;
}

const accountsBySub = new Map();

const keys = (config.kids || ['k1']).map((kid) => {
  const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  return { ...privateKey.export({ format: 'jwk' }), kid, alg: 'RS256', use: 'sig' };
});

const provider = new Provider(config.issuer, {
  clients: config.clients.map((client) => ({
    grant_types: ['authorization_code'],
    response_types: ['code'],
    token_endpoint_auth_method: 'client_secret_basic',
    ...client,
  })),
  jwks: { keys },
  cookies: { keys: [randomBytes(32).toString('hex')] },
  claims: { openid: ['sub'], email: ['email', 'email_verified'], profile: ['given_name', 'family_name'] },
  features: { devInteractions: { enabled: true }, backchannelLogout: { enabled: true } },
  // *.localhost is loopback (RFC 6761), as browsers and curl have it: back-channel logout reaches the
  // hospitals' hosts of a local set-up.
  httpOptions() {
    return {
      dnsLookup(hostname, options, callback) {
        if (hostname === 'localhost' || hostname.endsWith('.localhost')) {
          return options.all ? callback(null, [{ address: '127.0.0.1', family: 4 }]) : callback(null, '127.0.0.1', 4);
        }
        return lookup(hostname, options, callback);
      },
    };
  },
  pkce: { required: () => true },
  // Short-lived enough for the tests; id_token lifetime is the provider's default (1 hour).
  ttl: { AuthorizationCode: 60, Session: 3600, Interaction: 3600, Grant: 3600, AccessToken: 600, IdToken: 3600 },
  async findAccount(ctx, id) {
    const claims = accountsBySub.get(id) || claimsOf(id);
    return { accountId: id, async claims() { return { ...claims, sub: id }; } };
  },
  // First-party clients: no consent screen (the hospital's own IdP already trusts its own app).
  async loadExistingGrant(ctx) {
    const grantId = ctx.oidc.result?.consent?.grantId || ctx.oidc.session.grantIdFor(ctx.oidc.client.clientId);
    if (grantId) return ctx.oidc.provider.Grant.find(grantId);
    const grant = new ctx.oidc.provider.Grant({ clientId: ctx.oidc.client.clientId, accountId: ctx.oidc.session.accountId });
    grant.addOIDCScope('openid email profile');
    await grant.save();
    return grant;
  },
});

// The login name becomes the account id; the id_token's sub is the account's own.
const { interactionFinished } = provider;
provider.interactionFinished = async function finished(req, res, result, options) {
  if (result.login) {
    const claims = claimsOf(result.login.accountId);
    accountsBySub.set(claims.sub, claims);
    result.login.accountId = claims.sub;
  }
  return interactionFinished.call(this, req, res, result, options);
};

provider.listen(config.port, '127.0.0.1', () => {
  console.log(`ready ${config.issuer}`);
});
