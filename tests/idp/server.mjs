// Test OpenID Provider for identify-bridge integration tests.
//
// A real `oidc-provider` instance with no UI: interactions are finished automatically
// from the `login_hint` authorization parameter. Configured with the IDP_CONFIG env var
// (JSON). Prints exactly one JSON line to stdout when ready:
//   {"issuer":"http://127.0.0.1:PORT[/issuer_path]","port":PORT}
// Everything else goes to stderr. See README.md.

import { createPrivateKey, generateKeyPairSync, randomBytes, randomUUID, sign } from 'node:crypto';
import * as http from 'node:http';
import * as querystring from 'node:querystring';

// oidc-provider prints attention messages with console.*; keep stdout for the ready line.
console.log = (...args) => console.error(...args);
console.info = (...args) => console.error(...args);
console.warn = (...args) => console.error(...args);

const { default: Provider, interactionPolicy } = await import('oidc-provider');

// ---------------------------------------------------------------------------------------------
// Configuration
// ---------------------------------------------------------------------------------------------

let rawConfig = {};
if (process.env.IDP_CONFIG && process.env.IDP_CONFIG.trim() !== '') {
  try {
    rawConfig = JSON.parse(process.env.IDP_CONFIG);
  } catch (err) {
    console.error(`IDP_CONFIG is not valid JSON: ${err.message}`);
    process.exit(2);
  }
}

function normalizeIssuerPath(p) {
  if (!p) return '';
  let out = String(p).trim();
  if (out === '' || out === '/') return '';
  if (!out.startsWith('/')) out = `/${out}`;
  while (out.endsWith('/')) out = out.slice(0, -1);
  return out;
}

const ISSUER_PATH = normalizeIssuerPath(rawConfig.issuer_path);
const ACCESS_TOKEN_AUDIENCE = rawConfig.access_token_audience || 'identify-api';
const DEFAULT_ACCESS_TOKEN_TTL = Number(rawConfig.access_token_ttl) > 0
  ? Math.floor(Number(rawConfig.access_token_ttl)) : 600;
const PKCE_REQUIRED = rawConfig.pkce_required !== false;
// When a refresh token is issued (see `offlineRule`): oidc-provider's own rule, Okta's and
// Entra's, Google's, or never.
const OFFLINE_RULES = ['consent', 'scope', 'access_type', 'none'];
const DEFAULT_OFFLINE = OFFLINE_RULES.includes(rawConfig.offline) ? rawConfig.offline : 'consent';
// The client authentication methods the provider supports (and lists in discovery).
const CLIENT_AUTH_METHODS = Array.isArray(rawConfig.client_auth_methods)
  && rawConfig.client_auth_methods.length
  ? rawConfig.client_auth_methods.map(String) : ['client_secret_basic', 'client_secret_post'];
// Resource indicators must be absolute URIs; the JWT `aud` is the configured audience.
const RESOURCE_INDICATOR = (() => {
  try {
    if (URL.parse(ACCESS_TOKEN_AUDIENCE)) return ACCESS_TOKEN_AUDIENCE;
  } catch { /* fallthrough */ }
  return `urn:identify-bridge:resource:${ACCESS_TOKEN_AUDIENCE}`;
})();
const RESOURCE_SCOPES = 'telemetry_apis';

const DEFAULT_CLIENTS = [{
  client_id: 'identify-bridge',
  client_secret: 'identify-bridge-secret',
  redirect_uris: ['http://127.0.0.1:3000/auth/callback'],
  grant_types: ['authorization_code', 'refresh_token'],
}];

// Clients whose config does not pin `token_endpoint_auth_method` accept both
// client_secret_basic and client_secret_post (like Google and Entra). They are registered as
// client_secret_basic and a post-style request is rewritten into a Basic header before
// oidc-provider sees it.
const lenientClients = new Set();
// Clients that pin `token_endpoint_auth_method`, and the method. oidc-provider itself treats
// client_secret_basic and client_secret_post as one; these clients get only the pinned one.
const pinnedMethods = new Map();

function normalizeClient(c) {
  if (!c || typeof c.client_id !== 'string' || !c.client_id) {
    throw new TypeError('client_id is required');
  }
  const grantTypes = Array.isArray(c.grant_types) && c.grant_types.length
    ? c.grant_types : ['authorization_code', 'refresh_token'];
  const hasCode = grantTypes.includes('authorization_code');
  if (!c.token_endpoint_auth_method) {
    lenientClients.add(c.client_id);
    pinnedMethods.delete(c.client_id);
  } else {
    lenientClients.delete(c.client_id);
    pinnedMethods.set(c.client_id, String(c.token_endpoint_auth_method));
  }
  const out = {
    client_id: c.client_id,
    client_secret: c.client_secret,
    grant_types: grantTypes,
    response_types: hasCode ? ['code'] : [],
    redirect_uris: hasCode ? (c.redirect_uris || []) : [],
    token_endpoint_auth_method: c.token_endpoint_auth_method || 'client_secret_basic',
  };
  // private_key_jwt: the client's public keys, which verify its client assertions.
  if (c.jwks) out.jwks = c.jwks;
  if (c.post_logout_redirect_uris) out.post_logout_redirect_uris = c.post_logout_redirect_uris;
  if (c.backchannel_logout_uri) {
    out.backchannel_logout_uri = c.backchannel_logout_uri;
    out.backchannel_logout_session_required = c.backchannel_logout_session_required !== false;
  }
  return out;
}

let clients = (Array.isArray(rawConfig.clients) && rawConfig.clients.length
  ? rawConfig.clients : DEFAULT_CLIENTS).map(normalizeClient);

// Mutable test mode, changed with POST /__control/mode.
const mode = {
  userinfo_sub: null,
  nonce: null,
  access_token_ttl: null,
  token_padding: null,
  userinfo_padding: null,
  jwks_status: null,
  offline: DEFAULT_OFFLINE,
  down: false,
};
// Requests to the key set (`{issuer}/jwks`) so far, shown by GET /__control/mode.
let jwksRequests = 0;
// Requests to the token endpoint and userinfo so far (also those refused while `down`), the
// refreshes answered with tokens, and the last authorization request's scope, prompt and
// access_type as the client sent them: shown by GET /__control/mode.
const requests = { token: 0, userinfo: 0, refreshed: 0 };
let lastAuthorization = null;

const accessTokenTtl = () => (mode.access_token_ttl && mode.access_token_ttl > 0
  ? mode.access_token_ttl : DEFAULT_ACCESS_TOKEN_TTL);

// ---------------------------------------------------------------------------------------------
// Accounts (claim shapes follow /work/shared/providers.md sections 1-3)
// ---------------------------------------------------------------------------------------------

const MS_PERSONAL_TID = '9188040d-6c67-4c5b-b112-36a304b66dad';

const ACCOUNTS = {
  'google-consumer': {
    sub: '110248495921238986420',
    name: 'Ana Souza',
    given_name: 'Ana',
    family_name: 'Souza',
    picture: 'https://lh3.googleusercontent.com/a/ACg8ocKx3-test=s96-c',
    email: 'ana.souza@gmail.com',
    email_verified: true,
    locale: 'pt-BR',
  },
  'google-workspace': {
    sub: '108843371902846513377',
    name: 'Marcus Chen',
    given_name: 'Marcus',
    family_name: 'Chen',
    picture: 'https://lh3.googleusercontent.com/a/ACg8ocLm9-test=s96-c',
    email: 'marcus.chen@acme.io',
    email_verified: true,
    hd: 'acme.io',
  },
  'microsoft-work': {
    sub: 'kX2wQ4d9hVb7-3mNqT0rL5sUeYzA1cF8gJ6iKoPjWn0',
    ver: '2.0',
    tid: '4f8e1c2a-7b3d-4e5f-9a10-2c3d4e5f6a7b',
    oid: 'c0a8e2f1-55d2-4c3b-9e7a-1f2e3d4c5b6a',
    name: 'Jane Doe',
    given_name: 'Jane',
    family_name: 'Doe',
    preferred_username: 'jane.doe@contoso.com',
    email: 'jane.doe@contoso.com',
    xms_edov: true,
    ctry: 'US',
    picture: 'https://graph.microsoft.com/v1.0/me/photo/$value',
  },
  'microsoft-personal': {
    sub: 'AAAAAAAAAAAAAAAAAAAAAPmX3kq9c2VtLWxlZS1wZXJzb25hbA',
    ver: '2.0',
    tid: MS_PERSONAL_TID,
    oid: '00000000-0000-0000-5e1a-2b3c4d5e6f70',
    name: 'Sam Lee',
    preferred_username: 'sam.lee@outlook.com',
    email: 'sam.lee@outlook.com',
  },
  'okta-user': {
    sub: '00u1a2b3c4D5e6F7g8h9',
    ver: 1,
    name: 'Priya Natarajan',
    given_name: 'Priya',
    family_name: 'Natarajan',
    nickname: 'Pri',
    preferred_username: 'priya@globex.com',
    zoneinfo: 'America/Chicago',
    locale: 'en-US',
    updated_at: 1767100000,
    profile: 'https://www.linkedin.com/in/priya-natarajan',
    website: 'https://github.com/priya-n',
    email: 'priya@globex.com',
    email_verified: true,
    address: {
      street_address: '500 Congress Ave',
      locality: 'Austin',
      region: 'TX',
      postal_code: '78701',
      country: 'US',
    },
    phone_number: '+1 (512) 555-0143',
    title: 'VP, Sales Operations',
    department: 'Revenue',
    organization: 'Globex Corp',
  },
  generic: {
    sub: 'generic-7d3f9a2e-5b1c-4e8a-9f60-0a1b2c3d4e5f',
    name: 'Alex Morgan',
    given_name: 'Alex',
    family_name: 'Morgan',
    preferred_username: 'alex.morgan',
    email: 'alex.morgan@example.org',
    email_verified: true,
    locale: 'en-GB',
    zoneinfo: 'Europe/London',
    address: {
      formatted: '221B Baker Street\nLondon NW1 6XE\nUnited Kingdom',
      street_address: '221B Baker Street',
      locality: 'London',
      postal_code: 'NW1 6XE',
      country: 'GB',
    },
    phone_number: '+44 20 7946 0958',
    phone_number_verified: false,
  },
};

function adHocAccount(hint) {
  const local = String(hint).split('@')[0];
  const parts = local.split(/[._\-+\s]+/).filter(Boolean)
    .map((p) => p.charAt(0).toUpperCase() + p.slice(1));
  const claims = {
    sub: String(hint),
    name: parts.join(' ') || String(hint),
    preferred_username: String(hint),
    email: String(hint).includes('@') ? String(hint) : `${hint}@example.com`,
    email_verified: true,
  };
  if (parts.length > 0) claims.given_name = parts[0];
  if (parts.length > 1) claims.family_name = parts.slice(1).join(' ');
  return claims;
}

// Okta's Users API records (`GET /api/v1/users/me`, providers.md §3.3), by `sub`: the only place
// Okta gives an account's `created` time and `status`.
const OKTA_USERS = new Map([[ACCOUNTS['okta-user'].sub, {
  id: ACCOUNTS['okta-user'].sub,
  status: 'ACTIVE',
  created: '2022-02-07T15:04:11.000Z',
  activated: '2022-02-07T15:05:02.000Z',
  statusChanged: '2022-02-07T15:05:02.000Z',
  lastLogin: '2026-01-01T00:00:00.000Z',
  lastUpdated: '2025-12-27T10:13:20.000Z',
  profile: {
    login: 'priya@globex.com', email: 'priya@globex.com', firstName: 'Priya', lastName: 'Natarajan',
    title: 'VP, Sales Operations', department: 'Revenue', organization: 'Globex Corp',
    mobilePhone: '+1-512-555-0143', city: 'Austin', state: 'TX', countryCode: 'US',
    timezone: 'America/Chicago', locale: 'en_US', profileUrl: null,
  },
}]]);

// Account ids seen by oidc-provider are the `sub` values; a login_hint is either a built-in
// account key (e.g. "okta-user"), a built-in sub, or anything else (ad-hoc account).
const BY_SUB = new Map(Object.values(ACCOUNTS).map((c) => [c.sub, c]));

function subForHint(hint) {
  if (ACCOUNTS[hint]) return ACCOUNTS[hint].sub;
  return String(hint);
}

// Claims changed at the provider after sign-in (`POST /__control/claims`), by `sub`.
const CLAIM_OVERRIDES = new Map();

function claimsForSub(sub) {
  return { ...(BY_SUB.get(sub) ?? adHocAccount(sub)), ...(CLAIM_OVERRIDES.get(sub) || {}) };
}

async function findAccount(_ctx, sub) {
  if (!sub) return undefined;
  const claims = claimsForSub(sub);
  return {
    accountId: sub,
    async claims() {
      return { ...claims, sub };
    },
  };
}

// ---------------------------------------------------------------------------------------------
// Provider construction
// ---------------------------------------------------------------------------------------------

function newSigningKey() {
  const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const jwk = privateKey.export({ format: 'jwk' });
  return { ...jwk, kid: `k-${randomUUID()}`, alg: 'RS256', use: 'sig' };
}

const cookieKeys = [randomBytes(32).toString('base64url')];

const OIDC_SCOPES = ['openid', 'profile', 'email', 'address', 'phone', 'offline_access', 'telemetry_apis',
  'okta.users.read.self'];

function buildPolicy() {
  const { base, Check } = interactionPolicy;
  const policy = base();
  const login = policy.get('login');
  // A login_hint naming a different account than the current session forces a new login, so
  // a cookie jar reused across tests still signs in as the requested account.
  login.checks.add(new Check('login_hint_mismatch', 'login_hint names a different account', (ctx) => {
    const hint = ctx.oidc.params.login_hint;
    const current = ctx.oidc.session.accountId;
    if (hint && current && (hint === 'deny' || subForHint(hint) !== current)) return Check.REQUEST_PROMPT;
    return Check.NO_NEED_TO_PROMPT;
  }));
  return policy;
}

let issuer; // set once listening

function makeProvider(jwk) {
  const provider = new Provider(issuer, {
    clients,
    jwks: { keys: [jwk] },
    findAccount,
    scopes: OIDC_SCOPES,
    responseTypes: ['code'],
    claims: {
      acr: null,
      sid: null,
      auth_time: null,
      iss: null,
      openid: ['sub'],
      profile: [
        'name', 'family_name', 'given_name', 'middle_name', 'nickname', 'preferred_username',
        'profile', 'picture', 'website', 'gender', 'birthdate', 'zoneinfo', 'locale', 'updated_at',
        'hd', 'tid', 'oid', 'ver', 'ctry', 'title', 'department', 'organization', 'created',
        // Claims beyond the standard ones, released when an account has them (tests add them
        // with POST /__control/claims): groups and Entra's group overage, an org id, a plan.
        'groups', 'hasgroups', 'org_id', 'plan', 'seats',
      ],
      email: ['email', 'email_verified', 'xms_edov'],
      address: ['address'],
      phone: ['phone_number', 'phone_number_verified'],
    },
    clientAuthMethods: CLIENT_AUTH_METHODS,
    // The bridges under test listen on 127.0.0.1: drop oidc-provider's SSRF guard (it refuses
    // special-use addresses) for its outgoing requests (back-channel logout tokens).
    fetch: (url, options) => {
      const { dispatcher: _guard, ...rest } = options;
      return globalThis.fetch(url, rest);
    },
    cookies: {
      keys: cookieKeys,
      long: { httpOnly: true, sameSite: 'lax', secure: false },
      short: { httpOnly: true, sameSite: 'lax', secure: false },
    },
    pkce: {
      required: () => PKCE_REQUIRED,
    },
    features: {
      devInteractions: { enabled: false },
      userinfo: { enabled: true },
      clientCredentials: { enabled: true },
      introspection: { enabled: true },
      revocation: { enabled: true },
      rpInitiatedLogout: { enabled: true },
      backchannelLogout: { enabled: true },
      claimsParameter: { enabled: true },
      resourceIndicators: {
        enabled: true,
        // Only the client credentials grant defaults to the API resource; the auth-code flow
        // keeps an opaque access token usable at userinfo.
        defaultResource: async (ctx, _client, oneOf) => {
          if (oneOf) return oneOf;
          if (ctx.oidc?.params?.grant_type === 'client_credentials') return RESOURCE_INDICATOR;
          return undefined;
        },
        useGrantedResource: async () => false,
        getResourceServerInfo: async (_ctx, resourceIndicator) => {
          if (resourceIndicator !== RESOURCE_INDICATOR && resourceIndicator !== ACCESS_TOKEN_AUDIENCE) {
            const { errors } = await import('oidc-provider');
            throw new errors.InvalidTarget();
          }
          return {
            scope: RESOURCE_SCOPES,
            audience: ACCESS_TOKEN_AUDIENCE,
            accessTokenTTL: accessTokenTtl(),
            accessTokenFormat: 'jwt',
            jwt: { sign: { alg: 'RS256' } },
          };
        },
      },
    },
    interactions: {
      policy: buildPolicy(),
      url: async (_ctx, interaction) => `${ISSUER_PATH}/interaction/${interaction.uid}`,
    },
    ttl: {
      AccessToken: (_ctx, token) => token.resourceServer?.accessTokenTTL || accessTokenTtl(),
      ClientCredentials: (_ctx, token) => token.resourceServer?.accessTokenTTL || accessTokenTtl(),
      AuthorizationCode: 60,
      IdToken: 3600,
      Grant: 14 * 24 * 3600,
      Interaction: 3600,
      Session: 14 * 24 * 3600,
      RefreshToken: 14 * 24 * 3600,
    },
    renderError: async (ctx, out, error) => {
      ctx.type = 'json';
      ctx.body = { ...out, detail: error?.message };
    },
  });
  provider.proxy = false;

  // userinfo_sub override: rewrite the `sub` of userinfo responses; userinfo_padding: add a
  // `padding` member of that many characters (an oversized answer).
  provider.use(async (ctx, next) => {
    await next();
    if (ctx.oidc?.route === 'userinfo' && ctx.status === 200
      && ctx.body && typeof ctx.body === 'object') {
      if (mode.userinfo_sub) ctx.body = { ...ctx.body, sub: mode.userinfo_sub };
      if (mode.userinfo_padding) ctx.body = { ...ctx.body, padding: 'x'.repeat(mode.userinfo_padding) };
    }
  });

  // token_padding: add a `padding` member of that many characters to token responses.
  provider.use(async (ctx, next) => {
    await next();
    if (ctx.oidc?.route === 'token' && ctx.status === 200
      && ctx.oidc.params?.grant_type === 'refresh_token') {
      requests.refreshed += 1;
    }
    if (ctx.oidc?.route === 'token' && mode.token_padding && ctx.status === 200
      && ctx.body && typeof ctx.body === 'object') {
      ctx.body = { ...ctx.body, padding: 'x'.repeat(mode.token_padding) };
    }
  });

  // Remember each account's grants, so /__control/revoke-grants can revoke them.
  for (const event of ['access_token.saved', 'refresh_token.saved']) {
    provider.on(event, (token) => {
      if (!token.accountId || !token.grantId) return;
      if (!grantsByAccount.has(token.accountId)) grantsByAccount.set(token.accountId, new Set());
      grantsByAccount.get(token.accountId).add(token.grantId);
    });
  }
  provider.on('server_error', (_ctx, err) => console.error('idp server_error:', err));
  provider.on('authorization.error', (_ctx, err) => console.error('idp authorization.error:', err.message, err.error_description ?? ''));
  provider.on('grant.error', (_ctx, err) => console.error('idp grant.error:', err.message, err.error_description ?? ''));
  provider.on('userinfo.error', (_ctx, err) => console.error('idp userinfo.error:', err.message, err.error_description ?? ''));
  return provider;
}

// ---------------------------------------------------------------------------------------------
// HTTP plumbing
// ---------------------------------------------------------------------------------------------

let current; // { provider, callback, kid, jwk }
const grantsByAccount = new Map(); // accountId -> Set(grantId)

function activate(jwk) {
  const provider = makeProvider(jwk);
  current = { provider, callback: provider.callback(), kid: jwk.kid, jwk };
  console.error(`idp: signing key kid=${jwk.kid}`);
}

function sendJson(res, status, body) {
  const data = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(data) });
  res.end(data);
}

async function readAll(req) {
  const chunks = [];
  for await (const chunk of req) chunks.push(chunk);
  return Buffer.concat(chunks).toString('utf8');
}

async function handleControl(req, res, path) {
  if (path === '/__control/health') {
    return sendJson(res, 200, { ok: true, issuer, kid: current.kid, mode });
  }
  if (path === '/__control/rotate-keys' && req.method === 'POST') {
    const old = current.kid;
    activate(newSigningKey());
    return sendJson(res, 200, { old_kid: old, kid: current.kid });
  }
  if (path === '/__control/sign' && req.method === 'POST') {
    // Signs { header, payload } with the current key (RS256, its kid, plus the given header
    // fields): tests build tokens the provider itself would not issue (crit, typ, iat).
    let body;
    try {
      body = JSON.parse(await readAll(req));
    } catch (err) {
      return sendJson(res, 400, { error: 'invalid_json', detail: err.message });
    }
    const b64 = (value) => Buffer.from(JSON.stringify(value)).toString('base64url');
    const input = `${b64({ alg: 'RS256', kid: current.kid, ...body.header })}.${b64(body.payload ?? {})}`;
    const key = createPrivateKey({ key: current.jwk, format: 'jwk' });
    const signature = sign('sha256', Buffer.from(input), key).toString('base64url');
    return sendJson(res, 200, { jwt: `${input}.${signature}` });
  }
  if (path === '/__control/mode' && req.method === 'POST') {
    const text = await readAll(req);
    let body = {};
    try {
      body = text.trim() ? JSON.parse(text) : {};
    } catch (err) {
      return sendJson(res, 400, { error: 'invalid_json', detail: err.message });
    }
    // Fields present in the body are set (null resets); absent fields are left unchanged.
    for (const key of ['userinfo_sub', 'nonce']) {
      if (key in body) mode[key] = body[key] === null || body[key] === undefined ? null : String(body[key]);
    }
    if ('jwks_status' in body) {
      const n = Number(body.jwks_status);
      mode.jwks_status = body.jwks_status === null || !(n >= 400 && n < 600) ? null : n;
    }
    for (const key of ['token_padding', 'userinfo_padding']) {
      if (key in body) {
        const n = Number(body[key]);
        mode[key] = body[key] === null || !(n > 0) ? null : Math.floor(n);
      }
    }
    if ('offline' in body) {
      if (body.offline !== null && !OFFLINE_RULES.includes(body.offline)) {
        return sendJson(res, 400, { error: 'invalid_request', detail: `offline is one of ${OFFLINE_RULES.join(', ')}` });
      }
      mode.offline = body.offline ?? DEFAULT_OFFLINE;
    }
    if ('down' in body) mode.down = body.down === true;
    if ('access_token_ttl' in body) {
      const n = Number(body.access_token_ttl);
      mode.access_token_ttl = body.access_token_ttl === null || !(n > 0) ? null : Math.floor(n);
    }
    console.error('idp: mode', JSON.stringify(mode));
    return sendJson(res, 200, { mode });
  }
  if (path === '/__control/clients' && req.method === 'POST') {
    // Add or replace a client; the provider is rebuilt with the same signing key (sessions,
    // grants and tokens live in the shared in-memory adapter and survive).
    let client;
    try {
      const text = await readAll(req);
      client = normalizeClient(JSON.parse(text));
    } catch (err) {
      return sendJson(res, 400, { error: 'invalid_client_metadata', detail: err.message });
    }
    const next = [...clients.filter((c) => c.client_id !== client.client_id), client];
    const previous = clients;
    clients = next;
    try {
      activate(current.jwk);
    } catch (err) {
      clients = previous;
      activate(current.jwk);
      return sendJson(res, 400, { error: 'invalid_client_metadata', detail: err.message });
    }
    return sendJson(res, 200, { client_id: client.client_id, clients: clients.map((c) => c.client_id) });
  }
  if (path === '/__control/revoke-grants' && req.method === 'POST') {
    // Revoke every grant of an account, as an admin would at a real provider: its access and
    // refresh tokens stop working (refresh answers invalid_grant, userinfo 401).
    let body;
    try {
      body = JSON.parse(await readAll(req));
    } catch (err) {
      return sendJson(res, 400, { error: 'invalid_json', detail: err.message });
    }
    const { provider } = current;
    const grants = [...(grantsByAccount.get(String(body.sub)) || [])];
    for (const grantId of grants) {
      await provider.AccessToken.revokeByGrantId(grantId);
      await provider.RefreshToken.revokeByGrantId(grantId);
      await provider.Grant.adapter.destroy(grantId);
    }
    grantsByAccount.delete(String(body.sub));
    return sendJson(res, 200, { revoked: grants.length });
  }
  if (path === '/__control/backchannel-logout' && req.method === 'POST') {
    // Send a back-channel logout token, as the provider does when the person logs out there:
    // oidc-provider's own Client#backchannelLogout (to the client's backchannel_logout_uri).
    let body;
    try {
      body = JSON.parse(await readAll(req));
    } catch (err) {
      return sendJson(res, 400, { error: 'invalid_json', detail: err.message });
    }
    const client = await current.provider.Client.find(String(body.client_id));
    if (!client) return sendJson(res, 404, { error: 'unknown_client' });
    try {
      await client.backchannelLogout(String(body.sub), body.sid ? String(body.sid) : undefined);
      return sendJson(res, 200, { sent: true });
    } catch (err) {
      return sendJson(res, 502, { error: 'delivery_failed', detail: `${err.message}${err.cause ? `: ${err.cause.message ?? err.cause}` : ''}` });
    }
  }
  if (path === '/__control/claims' && req.method === 'POST') {
    // Change an account's claims, as an admin editing the person's profile at the provider
    // would: { sub, claims } (a sub of a built-in account or an ad-hoc login_hint); later
    // tokens and userinfo carry them.
    let body;
    try {
      body = JSON.parse(await readAll(req));
    } catch (err) {
      return sendJson(res, 400, { error: 'invalid_json', detail: err.message });
    }
    if (!body || typeof body.sub !== 'string' || typeof body.claims !== 'object' || body.claims === null) {
      return sendJson(res, 400, { error: 'invalid_request', detail: 'sub and claims are required' });
    }
    CLAIM_OVERRIDES.set(body.sub, { ...(CLAIM_OVERRIDES.get(body.sub) || {}), ...body.claims });
    return sendJson(res, 200, { sub: body.sub, claims: claimsForSub(body.sub) });
  }
  if (path === '/__control/mode' && req.method === 'GET') {
    return sendJson(res, 200, {
      mode, jwks_requests: jwksRequests, requests, last_authorization: lastAuthorization,
    });
  }
  return sendJson(res, 404, { error: 'not_found' });
}

async function handleInteraction(req, res) {
  const { provider } = current;
  let details;
  try {
    details = await provider.interactionDetails(req, res);
  } catch (err) {
    console.error('idp: interaction lookup failed:', err.message);
    return sendJson(res, 400, { error: 'invalid_request', error_description: `interaction not found: ${err.message}` });
  }
  const { prompt, params, session } = details;
  const hint = params.login_hint ? String(params.login_hint) : 'google-consumer';

  if (hint === 'deny') {
    return provider.interactionFinished(req, res, {
      error: 'access_denied',
      error_description: 'The user denied the request',
    }, { mergeWithLastSubmission: false });
  }

  const result = {};
  const wanted = subForHint(hint);
  let accountId = session?.accountId;
  if (prompt.name === 'login' || !accountId || accountId !== wanted) {
    accountId = wanted;
    result.login = { accountId, remember: true };
  }

  let grant;
  if (details.grantId && !result.login) {
    grant = await provider.Grant.find(details.grantId);
  }
  if (!grant || grant.accountId !== accountId) {
    grant = new provider.Grant({ accountId, clientId: params.client_id });
  }

  const requestedScopes = String(params.scope || 'openid').split(' ').filter(Boolean);
  const oidcScopes = requestedScopes.filter((s) => OIDC_SCOPES.includes(s));
  if (oidcScopes.length) grant.addOIDCScope(oidcScopes.join(' '));
  if (prompt.details?.missingOIDCScope) grant.addOIDCScope(prompt.details.missingOIDCScope.join(' '));

  const claims = new Set(prompt.details?.missingOIDCClaims || []);
  if (params.claims) {
    try {
      const parsed = typeof params.claims === 'string' ? JSON.parse(params.claims) : params.claims;
      for (const target of ['id_token', 'userinfo']) {
        for (const c of Object.keys(parsed?.[target] || {})) claims.add(c);
      }
    } catch { /* ignore bad claims parameter */ }
  }
  if (claims.size) grant.addOIDCClaims([...claims]);

  for (const [indicator, scopes] of Object.entries(prompt.details?.missingResourceScopes || {})) {
    grant.addResourceScope(indicator, scopes.join(' '));
  }

  const grantId = await grant.save();
  result.consent = { grantId };
  return provider.interactionFinished(req, res, result, { mergeWithLastSubmission: false });
}

const LENIENT_AUTH_ROUTES = new Set(['/token', '/token/introspection', '/token/revocation']);

async function handle(req, res) {
  const url = new URL(req.url, 'http://127.0.0.1');
  const path = url.pathname;

  if (path.startsWith('/__control/')) return handleControl(req, res, path);
  if (path === '/api/v1/users/me' && req.method === 'GET') return handleOktaUsersMe(req, res);

  let inner;
  if (ISSUER_PATH === '') {
    inner = path;
  } else if (path === ISSUER_PATH || path.startsWith(`${ISSUER_PATH}/`)) {
    inner = path.slice(ISSUER_PATH.length) || '/';
  } else {
    return sendJson(res, 404, { error: 'not_found', error_description: `not under issuer path ${ISSUER_PATH}` });
  }

  if (inner === '/token') requests.token += 1;
  if (inner === '/me') requests.userinfo += 1;
  // down: the provider cannot be reached (the connection is dropped unanswered).
  if (mode.down) {
    req.socket.destroy();
    return undefined;
  }

  if (inner.startsWith('/interaction/')) return handleInteraction(req, res);

  if (inner === '/jwks') {
    jwksRequests += 1;
    if (mode.jwks_status) {
      return sendJson(res, mode.jwks_status, { error: 'temporarily_unavailable' });
    }
  }

  let innerUrl = inner + url.search;

  // Authorization requests (GET /auth; not the /auth/:uid resume route): remembered, the
  // offline rule applied, and the nonce override.
  if (inner === '/auth' && req.method === 'GET') {
    const { searchParams } = url;
    lastAuthorization = Object.fromEntries(['scope', 'prompt', 'access_type']
      .filter((name) => searchParams.has(name)).map((name) => [name, searchParams.get(name)]));
    const refused = refusedOffline(searchParams);
    if (refused) {
      res.writeHead(303, { Location: refused });
      return res.end();
    }
    offlineRule(searchParams);
    if (mode.nonce) searchParams.set('nonce', mode.nonce);
    innerUrl = inner + url.search;
  }

  // Accept client_secret_post for clients registered as client_secret_basic.
  if (req.method === 'POST' && LENIENT_AUTH_ROUTES.has(inner)
    && String(req.headers['content-type'] || '').startsWith('application/x-www-form-urlencoded')) {
    const text = await readAll(req);
    const form = querystring.parse(text);
    // A client with a pinned method: refuse the other secret method, as Okta does.
    const basic = /^Basic\s+(\S+)$/i.exec(String(req.headers.authorization || ''));
    const used = basic ? 'client_secret_basic' : (typeof form.client_secret === 'string' ? 'client_secret_post' : null);
    let usedBy = typeof form.client_id === 'string' ? form.client_id : null;
    if (basic) {
      const decoded = Buffer.from(basic[1], 'base64').toString('utf8');
      usedBy = decodeURIComponent(decoded.slice(0, Math.max(decoded.indexOf(':'), 0)));
    }
    const pinned = usedBy && pinnedMethods.get(usedBy);
    if (used && pinned && ['client_secret_basic', 'client_secret_post'].includes(pinned) && used !== pinned) {
      console.error(`idp: client ${usedBy} used ${used}, registered ${pinned}`);
      return sendJson(res, 401, { error: 'invalid_client', error_description: `client authentication must use ${pinned}` });
    }
    if (!req.headers.authorization && typeof form.client_id === 'string'
      && typeof form.client_secret === 'string' && lenientClients.has(form.client_id)) {
      const basic = `${encodeURIComponent(form.client_id)}:${encodeURIComponent(form.client_secret)}`;
      req.headers.authorization = `Basic ${Buffer.from(basic).toString('base64')}`;
      delete form.client_id;
      delete form.client_secret;
    }
    const body = querystring.stringify(form);
    req.body = body;
    req.headers['content-length'] = String(Buffer.byteLength(body));
  }

  req.originalUrl = req.url;
  if (ISSUER_PATH !== '') {
    req.originalUrl = ISSUER_PATH + innerUrl;
  }
  req.url = innerUrl;
  return current.callback(req, res);
}

// When an authorization request gets a refresh token. oidc-provider grants `offline_access`
// only with `prompt=consent` (OpenID Connect Core §11), its `consent` rule, left alone. The
// others rewrite the request into that form when the provider they imitate would issue one:
// `scope` (Okta, Entra): the `offline_access` scope alone; `access_type` (Google):
// `access_type=offline`, and `offline_access` is not a scope there (dropped); `none`: never.
function offlineRule(params) {
  const scopes = (params.get('scope') || '').split(' ').filter(Boolean);
  const prompts = (params.get('prompt') || '').split(' ').filter(Boolean);
  let offline;
  switch (mode.offline) {
    case 'scope': offline = scopes.includes('offline_access'); break;
    case 'access_type': offline = params.get('access_type') === 'offline'; break;
    case 'none': offline = false; break;
    default: return;
  }
  const kept = scopes.filter((s) => s !== 'offline_access');
  if (offline) {
    kept.push('offline_access');
    if (!prompts.includes('consent')) prompts.push('consent');
  }
  params.set('scope', kept.join(' '));
  if (prompts.length) params.set('prompt', prompts.join(' '));
}

// Okta (the `scope` rule): `offline_access` from an app without the Refresh Token grant is
// refused, the whole request answered `error=invalid_scope` at the redirect URI (oidc-provider
// would drop the scope silently). The redirect to send, or null.
function refusedOffline(params) {
  const scopes = (params.get('scope') || '').split(' ');
  if (mode.offline !== 'scope' || !scopes.includes('offline_access')) return null;
  const client = clients.find((c) => c.client_id === params.get('client_id'));
  const redirectUri = params.get('redirect_uri');
  if (!client || client.grant_types.includes('refresh_token')
    || !client.redirect_uris.includes(redirectUri)) return null;
  const target = new URL(redirectUri);
  target.searchParams.set('error', 'invalid_scope');
  target.searchParams.set('error_description', 'The following scopes are not allowed: offline_access');
  if (params.has('state')) target.searchParams.set('state', params.get('state'));
  target.searchParams.set('iss', issuer);
  return target.toString();
}

// Okta's Users API, as the user: the access token must be live and carry okta.users.read.self.
// Errors in Okta's own shape (errorCode / errorSummary).
async function handleOktaUsersMe(req, res) {
  const match = /^Bearer\s+(\S+)$/i.exec(String(req.headers.authorization || ''));
  const token = match ? await current.provider.AccessToken.find(match[1]) : undefined;
  if (!token || token.isExpired) {
    return sendJson(res, 401, { errorCode: 'E0000011', errorSummary: 'Invalid token provided' });
  }
  if (!String(token.scope || '').split(' ').includes('okta.users.read.self')) {
    return sendJson(res, 403, {
      errorCode: 'E0000006', errorSummary: 'You do not have permission to perform the requested action',
    });
  }
  const user = OKTA_USERS.get(token.accountId);
  if (!user) {
    return sendJson(res, 404, { errorCode: 'E0000007', errorSummary: 'Not found: Resource not found: me (User)' });
  }
  return sendJson(res, 200, user);
}

const server = http.createServer((req, res) => {
  handle(req, res).catch((err) => {
    console.error('idp: request failed:', err);
    if (!res.headersSent) sendJson(res, 500, { error: 'server_error', detail: String(err?.message ?? err) });
    else res.end();
  });
});

// IDP_HOST / IDP_PORT / IDP_PUBLIC_ORIGIN serve it from a container (docker-compose.yml);
// tests use the defaults: loopback, a random port, the issuer on that port.
server.listen(Number(process.env.IDP_PORT || 0), process.env.IDP_HOST || '127.0.0.1', () => {
  const { port } = server.address();
  const origin = process.env.IDP_PUBLIC_ORIGIN || `http://127.0.0.1:${port}`;
  issuer = `${origin.replace(/\/+$/, '')}${ISSUER_PATH}`;
  try {
    activate(newSigningKey());
  } catch (err) {
    console.error('idp: failed to start provider:', err);
    process.exit(1);
  }
  process.stdout.write(`${JSON.stringify({ issuer, port })}\n`);
});

for (const sig of ['SIGTERM', 'SIGINT']) {
  process.on(sig, () => {
    server.close();
    process.exit(0);
  });
}
// Opt-in: exit when the parent closes our stdin (e.g. the test process died without killing us).
if (process.env.IDP_EXIT_ON_STDIN_EOF === '1') {
  process.stdin.on('end', () => process.exit(0));
  process.stdin.on('error', () => process.exit(0));
  process.stdin.resume();
}
