// A certified OpenID Connect relying-party library we did not write (openid-client) signs a
// user in through the hub: discovery, authorization with PKCE and a nonce, the token endpoint,
// ID token validation against the hub's JWKS, userinfo. It must refuse a wrong nonce, an
// expired ID token and an ID token made for another app.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import * as client from 'openid-client';
import { startHub, admin, USER, PASSWORD } from './hub-process.mjs';

const APP = 'profile-app';
const OTHER = 'other-app';
const REDIRECT = 'https://rp.example/callback';
const OTHER_REDIRECT = 'http://127.0.0.1/callback';
let hub;

before(async () => {
  hub = await startHub([
    { name: 'Profile App', clientId: APP, public: false, redirectUri: REDIRECT, scopes: ['openid', 'profile', 'email'] },
    { name: 'Other App', clientId: OTHER, public: true, redirectUri: OTHER_REDIRECT, scopes: ['openid'] },
  ]);
  admin(hub.dataDir, ['user', 'set', USER, '--name', 'Ada Lovelace', '--email', 'ada@example.com']);
});
after(async () => hub?.stop());

/** The user's part, as a browser does it: sign in, then approve the profile scopes asked for. */
async function consent(authorizationUrl, scopes) {
  const origin = { origin: hub.url, 'sec-fetch-site': 'same-origin' };
  let r = await hub.fetch(authorizationUrl.href);
  assert.equal(r.status, 303, await r.text());
  const request = new URL(r.headers.get('location'), hub.url).searchParams.get('request');
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
  if (scopes.includes('email')) assert.match(html, /See your email address/, 'the consent page says what email means');
  const form = html.slice(html.indexOf('action="/account/consent"'));
  const csrf = /name="csrf" value="([^"]+)"/.exec(form)[1];
  const body = new URLSearchParams({ request, csrf, decision: 'approve' });
  for (const scope of scopes) body.append('scope', scope);
  r = await hub.fetch(`${hub.url}/account/consent`, { method: 'POST', headers: { ...origin, cookie }, body });
  assert.equal(r.status, 303, await r.text());
  return new URL(r.headers.get('location'));
}

async function discover(clientId, metadata = {}, fetchImpl = hub.fetch) {
  const auth = clientId === APP ? client.ClientSecretBasic(hub.secrets[APP]) : client.None();
  return client.discovery(new URL(hub.url), clientId, metadata, auth, { [client.customFetch]: fetchImpl });
}

/** Starts a sign-in for `config`; returns the callback URL and the checks it needs. */
async function signIn(config, redirectUri, scopes, nonce = client.randomNonce()) {
  const pkceCodeVerifier = client.randomPKCECodeVerifier();
  const expectedState = client.randomState();
  const url = client.buildAuthorizationUrl(config, {
    redirect_uri: redirectUri,
    scope: scopes.join(' '),
    code_challenge: await client.calculatePKCECodeChallenge(pkceCodeVerifier),
    code_challenge_method: 'S256',
    state: expectedState,
    nonce,
  });
  const callback = await consent(url, scopes);
  return { callback, checks: { pkceCodeVerifier, expectedState, expectedNonce: nonce, idTokenExpected: true } };
}

test('openid-client signs the user in, validates the ID token and reads only the consented claims', async () => {
  const config = await discover(APP);
  assert.equal(config.serverMetadata().issuer, hub.url);
  assert.equal(config.serverMetadata().jwks_uri, `${hub.url}/oauth/jwks`);
  const { callback, checks } = await signIn(config, REDIRECT, ['openid', 'profile', 'email']);
  const tokens = await client.authorizationCodeGrant(config, callback, checks);
  const claims = tokens.claims();
  assert.match(claims.sub, /^usr_/);
  assert.equal(claims.aud, APP);
  assert.equal(claims.iss, hub.url);
  assert.equal(claims.nonce, checks.expectedNonce);
  assert.ok(claims.auth_time <= claims.iat && claims.auth_time > claims.iat - 600, 'auth_time is the sign-in');
  const digest = createHash('sha512').update(tokens.access_token).digest();
  assert.equal(claims.at_hash, digest.subarray(0, 32).toString('base64url'), 'at_hash binds the access token');
  const { header } = decodeJwt(tokens.id_token);
  assert.equal(header.alg, 'EdDSA');

  const info = await client.fetchUserInfo(config, tokens.access_token, claims.sub);
  assert.deepEqual(info, { sub: claims.sub, name: 'Ada Lovelace', preferred_username: USER, email: 'ada@example.com' });

  // Revoking the sign-in stops userinfo at once.
  await client.tokenRevocation(config, tokens.refresh_token);
  await assert.rejects(client.fetchUserInfo(config, tokens.access_token, claims.sub), (e) => e.status === 401);
});

test('only openid: userinfo tells the subject and nothing more', async () => {
  const config = await discover(APP);
  const { callback, checks } = await signIn(config, REDIRECT, ['openid']);
  const tokens = await client.authorizationCodeGrant(config, callback, checks);
  const info = await client.fetchUserInfo(config, tokens.access_token, tokens.claims().sub);
  assert.deepEqual(info, { sub: tokens.claims().sub });
});

test('a wrong nonce is refused by the relying party', async () => {
  const config = await discover(APP);
  const { callback, checks } = await signIn(config, REDIRECT, ['openid']);
  await assert.rejects(
    client.authorizationCodeGrant(config, callback, { ...checks, expectedNonce: client.randomNonce() }),
    refusedClaim('nonce'),
  );
});

test('an expired ID token is refused by the relying party', async () => {
  // The relying party's clock an hour ahead: the hub's ten-minute ID token is long expired then.
  const config = await discover(APP, { [client.clockSkew]: +3600 });
  const { callback, checks } = await signIn(config, REDIRECT, ['openid']);
  await assert.rejects(client.authorizationCodeGrant(config, callback, checks), refusedClaim('exp'));
});

test('an ID token made for another app is refused by the relying party', async () => {
  // A genuine hub ID token for OTHER, with the same nonce, slipped into APP's token response.
  const nonce = client.randomNonce();
  const other = await discover(OTHER);
  const { callback: otherCallback, checks: otherChecks } = await signIn(other, OTHER_REDIRECT, ['openid'], nonce);
  const foreign = (await client.authorizationCodeGrant(other, otherCallback, otherChecks)).id_token;
  assert.equal(decodeJwt(foreign).payload.aud, OTHER);

  const swapping = async (url, init) => {
    const response = await hub.fetch(url, init);
    if (!String(url).endsWith('/oauth/token')) return response;
    const body = await response.json();
    assert.ok(body.id_token, 'the hub sent its own ID token');
    body.id_token = foreign;
    return new Response(JSON.stringify(body), { status: response.status, headers: response.headers });
  };
  const config = await discover(APP, {}, swapping);
  const { callback, checks } = await signIn(config, REDIRECT, ['openid'], nonce);
  await assert.rejects(client.authorizationCodeGrant(config, callback, checks), refusedClaim('aud'));
});

/** Matches the library's refusal of an ID token because of `claim`. */
function refusedClaim(claim) {
  return (e) => {
    const detail = e.cause?.cause ?? e.cause;
    assert.equal(detail?.claim, claim, `refused for ${claim}: ${e.message} ${JSON.stringify(detail)}`);
    return true;
  };
}

function decodeJwt(jwt) {
  const [h, p] = jwt.split('.');
  return { header: JSON.parse(Buffer.from(h, 'base64url')), payload: JSON.parse(Buffer.from(p, 'base64url')) };
}
