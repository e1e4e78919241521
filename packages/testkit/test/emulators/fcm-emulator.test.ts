import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createPrivateKey, generateKeyPairSync } from 'node:crypto';
import { SignJWT } from 'jose';
import { FcmEmulator, FCM_SCOPE } from '../../src/emulators/index.js';
import type { FcmMessageRecord, ServiceAccountJson } from '../../src/emulators/index.js';

let emu: FcmEmulator;
let sa: ServiceAccountJson;
before(async () => {
  emu = await new FcmEmulator({ strictDevices: false }).start();
  sa = emu.createServiceAccount('proj-a');
});
after(async () => {
  await emu.close();
});

async function assertion(o: { scope?: string; aud?: string; iat?: number; exp?: number; key?: string; iss?: string } = {}): Promise<string> {
  const iat = o.iat ?? Math.floor(Date.now() / 1000);
  return new SignJWT({ scope: o.scope ?? FCM_SCOPE })
    .setProtectedHeader({ alg: 'RS256', typ: 'JWT' })
    .setIssuer(o.iss ?? sa.client_email)
    .setAudience(o.aud ?? sa.token_uri)
    .setIssuedAt(iat)
    .setExpirationTime(o.exp ?? iat + 3600)
    .sign(createPrivateKey(o.key ?? sa.private_key));
}

async function tokenReq(a: string, grant = 'urn:ietf:params:oauth:grant-type:jwt-bearer') {
  const res = await fetch(sa.token_uri, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams({ grant_type: grant, assertion: a }) });
  return { status: res.status, json: (await res.json()) as Record<string, unknown> };
}

async function send(accessToken: string, message: unknown, project = 'proj-a') {
  const res = await fetch(`${emu.url}/v1/projects/${project}/messages:send`, { method: 'POST', headers: { authorization: `Bearer ${accessToken}`, 'content-type': 'application/json' }, body: JSON.stringify({ message }) });
  return { status: res.status, headers: res.headers, json: (await res.json()) as { name?: string; error?: { code: number; status: string; message: string; details?: { '@type': string; errorCode: string }[] } } };
}

const errorCode = (j: Awaited<ReturnType<typeof send>>['json']) => j.error?.details?.find((d) => d['@type'] === 'type.googleapis.com/google.firebase.fcm.v1.FcmError')?.errorCode;

test('OAuth: a valid RS256 assertion yields a bearer token; every rule is checked', async () => {
  const ok = await tokenReq(await assertion());
  assert.equal(ok.status, 200);
  assert.equal(ok.json.token_type, 'Bearer');
  assert.equal(ok.json.expires_in, 3600);
  assert.match(String(ok.json.access_token), /^ya29\./);
  assert.equal((await tokenReq(await assertion(), 'client_credentials')).json.error, 'unsupported_grant_type');
  assert.equal((await tokenReq(await assertion({ aud: 'https://example.com/token' }))).json.error, 'invalid_grant');
  assert.equal((await tokenReq(await assertion({ scope: 'https://www.googleapis.com/auth/userinfo.email' }))).json.error, 'invalid_scope');
  const iat = Math.floor(Date.now() / 1000);
  assert.equal((await tokenReq(await assertion({ iat, exp: iat + 7200 }))).json.error, 'invalid_grant');
  assert.equal((await tokenReq(await assertion({ iat: iat - 7200, exp: iat - 3600 }))).json.error, 'invalid_grant');
  const stranger = generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
  assert.equal((await tokenReq(await assertion({ key: stranger }))).json.error_description, 'Invalid JWT Signature.');
});

test('messages:send: auth, project, shape, data strings, size, reserved keys', async () => {
  const at = String((await tokenReq(await assertion())).json.access_token);
  const good = { token: 'dev-1', data: { pushcall: '{"v":1}' }, android: { priority: 'HIGH', ttl: '0s' } };
  const delivered = new Promise<FcmMessageRecord>((r) => emu.subscribe('dev-1', r));
  const r = await send(at, good);
  assert.equal(r.status, 200);
  assert.match(r.json.name!, /^projects\/proj-a\/messages\/0:\d+%[0-9a-f]{16}$/);
  assert.deepEqual((await delivered).payload, { v: 1 });

  const unauth = await send('ya29.bogus', good);
  assert.equal(unauth.status, 401);
  assert.equal(unauth.json.error?.status, 'UNAUTHENTICATED');
  assert.equal(unauth.json.error?.details, undefined, 'stale token: no FcmError detail');
  assert.equal((await send(at, good, 'no-such-project')).status, 404);
  emu.createServiceAccount('proj-b');
  assert.equal((await send(at, good, 'proj-b')).status, 403);

  const bad = async (message: unknown) => {
    const x = await send(at, message);
    assert.equal(x.status, 400, JSON.stringify(message).slice(0, 80));
    assert.equal(errorCode(x.json), 'INVALID_ARGUMENT');
    return x.json.error!.message;
  };
  await bad({ data: { a: 'b' } });
  await bad({ token: 'dev-1', data: { n: 1 } });
  await bad({ token: 'dev-1', data: { 'google.x': 'y' } });
  await bad({ token: 'dev-1', data: { from: 'y' } });
  assert.match(await bad({ token: 'dev-1', data: { pushcall: 'x'.repeat(4090) } }), /too big/);
  await bad({ token: 'dev-1', android: { priority: 'URGENT' } });
  await bad({ token: 'dev-1', android: { ttl: '30' } });
});

test('device registry and scripting: UNREGISTERED, SENDER_ID_MISMATCH, QUOTA_EXCEEDED + Retry-After, UNAVAILABLE, INTERNAL', async () => {
  const at = String((await tokenReq(await assertion())).json.access_token);
  const m = (token: string) => ({ token, data: { pushcall: '{}' } });
  emu.registerDevice({ token: 'uninstalled', projectId: 'proj-a' });
  emu.unregister('uninstalled');
  let r = await send(at, m('uninstalled'));
  assert.equal(r.status, 404);
  assert.equal(errorCode(r.json), 'UNREGISTERED');
  emu.registerDevice({ token: 'foreign', projectId: 'proj-b' });
  r = await send(at, m('foreign'));
  assert.equal(r.status, 403);
  assert.equal(errorCode(r.json), 'SENDER_ID_MISMATCH');
  emu.failFor('hot', { errorCode: 'QUOTA_EXCEEDED', retryAfter: 60 }, 1);
  r = await send(at, m('hot'));
  assert.equal(r.status, 429);
  assert.equal(r.headers.get('retry-after'), '60');
  assert.equal(errorCode(r.json), 'QUOTA_EXCEEDED');
  assert.equal((await send(at, m('hot'))).status, 200);
  emu.failNext({ errorCode: 'UNAVAILABLE' });
  emu.failNext({ errorCode: 'INTERNAL' });
  assert.equal((await send(at, m('x'))).status, 503);
  assert.equal((await send(at, m('x'))).status, 500);
  emu.revokeAccessTokens();
  assert.equal((await send(at, m('x'))).status, 401);
});
