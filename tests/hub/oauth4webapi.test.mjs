// A third-party OAuth client we did not write (oauth4webapi, strict by design) completes the
// authorization code flow with PKCE against the hub, refreshes, introspects and revokes.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import * as oauth from 'oauth4webapi';
import { startHub, accessStatus, USER, PASSWORD } from './hub-process.mjs';

const PUBLIC_ID = 'native-app';
const CONF_ID = 'server-app';
const REDIRECT = 'http://127.0.0.1/callback';
const CONF_REDIRECT = 'https://app.example/callback';
let hub;

before(async () => {
  hub = await startHub([
    { name: 'Native App', clientId: PUBLIC_ID, public: true, redirectUri: REDIRECT },
    { name: 'Server App', clientId: CONF_ID, public: false, redirectUri: CONF_REDIRECT },
  ]);
});
after(async () => hub?.stop());

/** The user's part, as a browser would do it: sign in and approve one data source. */
async function consent(authorizationUrl) {
  const origin = { origin: hub.url, 'sec-fetch-site': 'same-origin' };
  let r = await hub.fetch(authorizationUrl.href);
  assert.equal(r.status, 303);
  const toLogin = new URL(r.headers.get('location'), hub.url);
  const request = toLogin.searchParams.get('request');
  r = await hub.fetch(`${hub.url}/account/login`, {
    method: 'POST',
    headers: origin,
    body: new URLSearchParams({ username: USER, password: PASSWORD, request }),
  });
  assert.equal(r.status, 303);
  const cookie = r.headers.get('set-cookie').split(';')[0];
  r = await hub.fetch(new URL(r.headers.get('location'), hub.url).href, { headers: { cookie } });
  assert.equal(r.status, 200);
  const html = await r.text();
  const form = html.slice(html.indexOf('action="/account/consent"'));
  const csrf = /name="csrf" value="([^"]+)"/.exec(form)[1];
  const body = new URLSearchParams({ request, csrf, decision: 'approve', source: hub.sources.historian });
  body.append('scope', 'data.read');
  r = await hub.fetch(`${hub.url}/account/consent`, { method: 'POST', headers: { ...origin, cookie }, body });
  assert.equal(r.status, 303);
  return new URL(r.headers.get('location'));
}

async function discover() {
  const issuer = new URL(hub.url);
  const response = await oauth.discoveryRequest(issuer, { algorithm: 'oauth2', [oauth.customFetch]: hub.fetch });
  return oauth.processDiscoveryResponse(issuer, response);
}

function authorizationUrl(as, clientId, redirectUri, challenge, state) {
  const url = new URL(as.authorization_endpoint);
  url.searchParams.set('client_id', clientId);
  url.searchParams.set('redirect_uri', redirectUri);
  url.searchParams.set('response_type', 'code');
  url.searchParams.set('scope', 'data.read');
  url.searchParams.set('code_challenge', challenge);
  url.searchParams.set('code_challenge_method', 'S256');
  url.searchParams.set('state', state);
  return url;
}

test('a public client completes the code flow with PKCE, refreshes and revokes', async () => {
  const as = await discover();
  assert.equal(as.issuer, hub.url);
  const client = { client_id: PUBLIC_ID };
  const clientAuth = oauth.None();
  const verifier = oauth.generateRandomCodeVerifier();
  const challenge = await oauth.calculatePKCECodeChallenge(verifier);
  const state = oauth.generateRandomState();
  const redirectUri = 'http://127.0.0.1:43210/callback';
  const callbackUrl = await consent(authorizationUrl(as, PUBLIC_ID, redirectUri, challenge, state));

  // Checks state and the RFC 9207 iss parameter.
  const params = oauth.validateAuthResponse(as, client, callbackUrl, state);
  const opts = { [oauth.customFetch]: hub.fetch };
  const response = await oauth.authorizationCodeGrantRequest(as, client, clientAuth, params, redirectUri, verifier, opts);
  const tokens = await oauth.processAuthorizationCodeResponse(as, client, response);
  assert.equal(tokens.token_type.toLowerCase(), 'bearer');
  assert.ok(tokens.expires_in > 0 && tokens.expires_in <= 600);
  assert.equal(await accessStatus(hub, tokens.access_token, hub.sources.historian), 200);
  assert.equal(await accessStatus(hub, tokens.access_token, hub.sources.lab), 403);

  const refreshed = await oauth.processRefreshTokenResponse(
    as, client, await oauth.refreshTokenGrantRequest(as, client, clientAuth, tokens.refresh_token, opts),
  );
  assert.notEqual(refreshed.refresh_token, tokens.refresh_token, 'rotated');
  assert.equal(await accessStatus(hub, refreshed.access_token, hub.sources.historian), 200);

  // Reusing the first refresh token is caught, and the client library reports it as an error.
  await assert.rejects(
    oauth.processRefreshTokenResponse(
      as, client, await oauth.refreshTokenGrantRequest(as, client, clientAuth, tokens.refresh_token, opts),
    ),
    (e) => e instanceof oauth.ResponseBodyError && e.error === 'invalid_grant',
  );
  assert.equal(await accessStatus(hub, refreshed.access_token, hub.sources.historian), 403, 'the family is revoked');
});

test('a confidential client authenticates, introspects and revokes', async () => {
  const as = await discover();
  const client = { client_id: CONF_ID };
  const clientAuth = oauth.ClientSecretBasic(hub.secrets[CONF_ID]);
  const verifier = oauth.generateRandomCodeVerifier();
  const state = oauth.generateRandomState();
  const callbackUrl = await consent(
    authorizationUrl(as, CONF_ID, CONF_REDIRECT, await oauth.calculatePKCECodeChallenge(verifier), state),
  );
  const params = oauth.validateAuthResponse(as, client, callbackUrl, state);
  const opts = { [oauth.customFetch]: hub.fetch };
  const tokens = await oauth.processAuthorizationCodeResponse(
    as, client, await oauth.authorizationCodeGrantRequest(as, client, clientAuth, params, CONF_REDIRECT, verifier, opts),
  );
  const introspection = await oauth.processIntrospectionResponse(
    as, client, await oauth.introspectionRequest(as, client, clientAuth, tokens.access_token, opts),
  );
  assert.equal(introspection.active, true);
  assert.equal(introspection.client_id, CONF_ID);

  await oauth.processRevocationResponse(await oauth.revocationRequest(as, client, clientAuth, tokens.refresh_token, opts));
  assert.equal(await accessStatus(hub, tokens.access_token, hub.sources.historian), 403);
  const after = await oauth.processIntrospectionResponse(
    as, client, await oauth.introspectionRequest(as, client, clientAuth, tokens.access_token, opts),
  );
  assert.equal(after.active, false);

  // A wrong secret is refused by the hub and surfaced by the library.
  const wrong = oauth.ClientSecretBasic('not-the-secret');
  await assert.rejects(
    oauth.processIntrospectionResponse(as, client, await oauth.introspectionRequest(as, client, wrong, tokens.access_token, opts)),
  );
});
