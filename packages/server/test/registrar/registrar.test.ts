/**
 * The registrar in process: REGISTER requests built as text, parsed with the SIP stack and
 * fed to `Registrar.handle()` with a MemoryBindingStore and a FakeClock. Covers RFC 3261
 * §10.3, RFC 5626 instance identity, RFC 8599 §5.6.1 and digest authentication
 * (RFC 3261 §22, RFC 7616, RFC 8760).
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { describe, it } from 'node:test';
import { FakeClock, type Flow, type SipRequest, type SipResponse, parseMessage } from '@pushcall/sip';
import { DigestAuthenticator, type DigestUser } from '../../src/auth/digest.js';
import { AuthFailureLimiter } from '../../src/auth/failure-limit.js';
import { validateConfig } from '../../src/config/load.js';
import type { ConfigInput } from '../../src/config/schema.js';
import { MemoryBindingStore } from '../../src/location/memory-store.js';
import type { Binding } from '../../src/location/types.js';
import { Registrar, type RegistrarHooks } from '../../src/registrar/registrar.js';

const DOMAIN = 'example.com';
const TOKEN = '00fc13adff785122b4ad28809a3420982341241421348097878e577c991de8f0';
const TOKEN2 = 'ab'.repeat(32);
const APNS = (token = TOKEN, extra = '') => `pn-provider=apns;pn-prid=${token};pn-param=ABCDE12345.com.example.app.voip${extra}`;
const FCM_TOKEN = 'fcm-token_0123456789:APA91bHun4MxP5egoKMwt2KZFBaFUH';
const INSTANCE_A = '<urn:uuid:11111111-2222-3333-4444-555555555555>';
const INSTANCE_B = '<urn:uuid:99999999-8888-7777-6666-555555555555>';

const FLOW: Flow = { protocol: 'udp', localAddress: '127.0.0.1', localPort: 5060, remoteAddress: '192.0.2.10', remotePort: 5062 };
const FLOW_TCP: Flow = { protocol: 'tcp', localAddress: '127.0.0.1', localPort: 5060, remoteAddress: '198.51.100.7', remotePort: 40123, connectionId: 'c-42' };

interface Reg {
  user?: string;
  toHost?: string;
  ruri?: string;
  callId?: string;
  cseq?: number;
  contacts?: string[];
  expires?: number | string;
  headers?: Array<[string, string]>;
}

let branch = 0;
function request(r: Reg & { callId: string; cseq: number }): SipRequest {
  const user = r.user ?? 'alice';
  const lines = [
    `REGISTER ${r.ruri ?? `sip:${DOMAIN}`} SIP/2.0`,
    `Via: SIP/2.0/UDP 192.0.2.10:5062;branch=z9hG4bK-t${++branch};rport`,
    'Max-Forwards: 70',
    `From: <sip:${user}@${r.toHost ?? DOMAIN}>;tag=from${branch}`,
    `To: <sip:${user}@${r.toHost ?? DOMAIN}>`,
    `Call-ID: ${r.callId}`,
    `CSeq: ${r.cseq} REGISTER`,
    ...(r.contacts ?? []).map((c) => `Contact: ${c}`),
    ...(r.expires !== undefined ? [`Expires: ${r.expires}`] : []),
    ...(r.headers ?? []).map(([n, v]) => `${n}: ${v}`),
    'User-Agent: pushcall-test/1',
    'Content-Length: 0',
    '',
    '',
  ];
  return parseMessage(Buffer.from(lines.join('\r\n'))) as SipRequest;
}

interface Setup {
  config?: ConfigInput;
  providers?: string[];
  users?: DigestUser[];
  hooks?: RegistrarHooks;
  /** The Web Push provider's VAPID public key (RFC 8599 `+sip.vapid`). */
  vapid?: string;
  /** auth.failureLimit's limiter, on the test's clock. */
  failureLimit?: boolean;
}

function setup(options: Setup = {}) {
  const clock = new FakeClock();
  const store = new MemoryBindingStore();
  const input = options.config ?? {};
  const digest = options.users !== undefined || (input.auth?.users?.length ?? 0) > 0;
  const config = validateConfig({ ...input, auth: { mode: digest ? 'digest' : 'open', ...(input.auth as object) } });
  const auth =
    config.auth.mode === 'digest'
      ? new DigestAuthenticator({
          realm: config.auth.realm ?? DOMAIN,
          users: options.users ?? config.auth.users,
          algorithms: config.auth.algorithms,
          nonceTtlSeconds: config.auth.nonceTtlSeconds,
          secret: 'test-secret',
          clock,
        })
      : undefined;
  const providers = options.providers ?? ['apns', 'fcm', 'webpush'];
  const vapid = options.vapid;
  const vapidPublicKey = vapid === undefined ? undefined : (provider: string) => (provider === 'webpush' ? vapid : undefined);
  const authFailures = options.failureLimit ? new AuthFailureLimiter({ ...config.auth.failureLimit, clock }) : undefined;
  const registrar = new Registrar({ config, store, clock, nodeId: 'node-t', auth, authFailures, supportedProviders: () => providers, vapidPublicKey, hooks: options.hooks });
  const callId = `cid-${Math.random().toString(36).slice(2)}@192.0.2.10`;
  let cseq = 0;
  return {
    clock,
    store,
    config,
    registrar,
    auth,
    callId,
    /** A REGISTER in this context's dialog-less registration "session" (one Call-ID, CSeq +1). */
    request: (r: Reg = {}) => request({ callId, cseq: ++cseq, ...r }),
    send: (r: Reg = {}, flow: Flow = FLOW) => registrar.handle(request({ callId, cseq: ++cseq, ...r }), flow),
    bindings: (user = 'alice') => store.lookup(`sip:${user}@${DOMAIN}`, clock.now()),
    snapshot: async () => JSON.stringify(await store.all()),
  };
}

/** Contact header values of a response, with their expires parameter. */
function contactsOf(res: SipResponse): Array<{ uri: string; expires: number; raw: string }> {
  return res.getAll('contact').map((raw) => {
    const m = /^<([^>]*)>.*;expires=(\d+)/.exec(raw);
    assert.ok(m, `Contact with expires: ${raw}`);
    return { uri: m[1], expires: Number(m[2]), raw };
  });
}

function only<T>(list: T[]): T {
  assert.equal(list.length, 1, `exactly one element, got ${list.length}`);
  return list[0];
}

// ---------------------------------------------------------------------------------------
describe('RFC 3261 §10.3: add, refresh, remove', () => {
  it('adds a binding with the default expiry and remembers the flow, Call-ID, CSeq and User-Agent', async () => {
    const t = setup();
    const res = await t.send({ contacts: ['<sip:alice@192.0.2.10:5062>'] });
    assert.equal(res.status, 200);
    const c = only(contactsOf(res));
    assert.equal(c.uri, 'sip:alice@192.0.2.10:5062');
    assert.equal(c.expires, 3600);
    assert.equal(res.getAll('feature-caps').length, 0, 'no Feature-Caps without pn-provider (RFC 8599 §5.6.1)');
    assert.ok(res.get('date'));
    const b = only(await t.bindings());
    assert.equal(b.aor, 'sip:alice@example.com');
    assert.equal(b.expiresAt, t.clock.now() + 3600_000);
    assert.equal(b.callId, t.callId);
    assert.equal(b.cseq, 1);
    assert.equal(b.push, undefined);
    assert.equal(b.userAgent, 'pushcall-test/1');
    assert.deepEqual(b.flow, { ...FLOW, connectionId: undefined, nodeId: 'node-t', nodeUri: undefined });
  });

  it('Expires header applies to contacts without an expires parameter; the parameter wins', async () => {
    const t = setup();
    const res = await t.send({ contacts: ['<sip:alice@192.0.2.10:5062>', '<sip:alice@192.0.2.10:5064>;expires=300'], expires: 900 });
    assert.equal(res.status, 200);
    const byUri = new Map(contactsOf(res).map((c) => [c.uri, c.expires]));
    assert.equal(byUri.get('sip:alice@192.0.2.10:5062'), 900);
    assert.equal(byUri.get('sip:alice@192.0.2.10:5064'), 300);
  });

  it('refreshes the same Contact: one binding, same id, new expiry and CSeq', async () => {
    const t = setup();
    await t.send({ contacts: ['<sip:alice@192.0.2.10:5062>'], expires: 600 });
    const first = only(await t.bindings());
    t.clock.advance(200_000);
    const res = await t.send({ contacts: ['<sip:alice@192.0.2.10:5062>'], expires: 600 });
    assert.equal(res.status, 200);
    assert.equal(only(contactsOf(res)).expires, 600);
    const second = only(await t.bindings());
    assert.equal(second.id, first.id);
    assert.equal(second.cseq, 2);
    assert.equal(second.expiresAt, t.clock.now() + 600_000);
    assert.equal(second.updatedAt, t.clock.now());
  });

  it('URI comparison is RFC 3261 §19.1.4 (host case-insensitive): a differently-cased host refreshes', async () => {
    const t = setup();
    await t.send({ contacts: ['<sip:alice@HOST.example.org:5062;transport=tcp>'], expires: 600 });
    await t.send({ contacts: ['<sip:alice@host.example.org:5062;transport=TCP>'], expires: 600 });
    assert.equal((await t.bindings()).length, 1);
  });

  it('removes a binding with expires=0 (param) and with Expires: 0 (header); the 200 lists what remains', async () => {
    const t = setup();
    await t.send({ contacts: ['<sip:alice@192.0.2.10:5062>', '<sip:alice@192.0.2.10:5064>', '<sip:alice@192.0.2.10:5066>'], expires: 600 });
    assert.equal((await t.bindings()).length, 3);
    let res = await t.send({ contacts: ['<sip:alice@192.0.2.10:5062>;expires=0'] });
    assert.equal(res.status, 200);
    assert.deepEqual(contactsOf(res).map((c) => c.uri).sort(), ['sip:alice@192.0.2.10:5064', 'sip:alice@192.0.2.10:5066']);
    res = await t.send({ contacts: ['<sip:alice@192.0.2.10:5064>'], expires: 0 });
    assert.deepEqual(contactsOf(res).map((c) => c.uri), ['sip:alice@192.0.2.10:5066']);
    assert.equal((await t.bindings()).length, 1);
  });

  it('removing an unknown Contact is a no-op 200', async () => {
    const t = setup();
    const res = await t.send({ contacts: ['<sip:alice@192.0.2.10:9999>'], expires: 0 });
    assert.equal(res.status, 200);
    assert.equal(res.getAll('contact').length, 0);
  });

  it('caps an expiry above registrar.maxExpires', async () => {
    const t = setup({ config: { registrar: { maxExpires: 7200 } } });
    const res = await t.send({ contacts: ['<sip:alice@192.0.2.10:5062>'], expires: 4_000_000_000 });
    assert.equal(only(contactsOf(res)).expires, 7200);
  });

  it('a binding past its expiry is gone from lookups and from the 200', async () => {
    const t = setup();
    await t.send({ contacts: ['<sip:alice@192.0.2.10:5062>'], expires: 60 });
    await t.send({ contacts: ['<sip:alice@192.0.2.10:5064>'], expires: 600 });
    t.clock.advance(61_000);
    const res = await t.send();
    assert.deepEqual(contactsOf(res).map((c) => [c.uri, c.expires]), [['sip:alice@192.0.2.10:5064', 539]]);
  });
});

describe('Min-Expires and 423 (RFC 3261 §10.3 step 7, RFC 8599 §5.6.1.1)', () => {
  it('plain binding below minExpires → 423 with Min-Expires, nothing stored', async () => {
    const t = setup();
    const res = await t.send({ contacts: ['<sip:alice@192.0.2.10:5062>'], expires: 59 });
    assert.equal(res.status, 423);
    assert.equal(res.get('min-expires'), '60');
    assert.equal((await t.bindings()).length, 0);
    assert.equal((await t.send({ contacts: ['<sip:alice@192.0.2.10:5062>'], expires: 60 })).status, 200);
  });

  it('push binding below minPushExpires → 423 with the push minimum, and no Feature-Caps', async () => {
    const t = setup();
    const res = await t.send({ contacts: [`<sip:alice@192.0.2.10:5062;${APNS()}>`], expires: 179 });
    assert.equal(res.status, 423);
    assert.equal(res.get('min-expires'), '180');
    assert.equal(res.getAll('feature-caps').length, 0);
    assert.equal((await t.bindings()).length, 0);
    const ok = await t.send({ contacts: [`<sip:alice@192.0.2.10:5062;${APNS()}>`], expires: 180 });
    assert.equal(ok.status, 200);
  });

  it('a contact expires param below the minimum triggers 423 even when the header is fine', async () => {
    const t = setup();
    const res = await t.send({ contacts: ['<sip:alice@192.0.2.10:5062>;expires=10'], expires: 3600 });
    assert.equal(res.status, 423);
  });

  it('configured minimums are used', async () => {
    const t = setup({ config: { registrar: { minExpires: 300, minPushExpires: 900 } } });
    assert.equal((await t.send({ contacts: ['<sip:alice@192.0.2.10:5062>'], expires: 299 })).get('min-expires'), '300');
    assert.equal((await t.send({ contacts: [`<sip:alice@192.0.2.10:5062;${APNS()}>`], expires: 600 })).get('min-expires'), '900');
  });

  it('expires 0 (removal) is never too brief', async () => {
    const t = setup();
    assert.equal((await t.send({ contacts: [`<sip:alice@192.0.2.10:5062;${APNS()}>`], expires: 0 })).status, 200);
  });
});

describe('Contact: * (RFC 3261 §10.3 step 6)', () => {
  it('with Expires: 0 removes every binding of the AOR (and only that AOR)', async () => {
    const t = setup();
    await t.send({ contacts: ['<sip:alice@192.0.2.10:5062>', `<sip:alice@192.0.2.10:5064;${APNS()}>`], expires: 600 });
    await t.send({ user: 'bob', contacts: ['<sip:bob@192.0.2.11:5062>'], expires: 600 });
    const res = await t.send({ contacts: ['*'], expires: 0 });
    assert.equal(res.status, 200);
    assert.equal(res.getAll('contact').length, 0);
    assert.equal((await t.bindings()).length, 0);
    assert.equal((await t.bindings('bob')).length, 1);
  });

  it('without Expires, or with a non-zero Expires → 400 and nothing removed', async () => {
    const t = setup();
    await t.send({ contacts: ['<sip:alice@192.0.2.10:5062>'], expires: 600 });
    const before = await t.snapshot();
    for (const expires of [undefined, 600]) {
      const res = await t.send({ contacts: ['*'], expires });
      assert.equal(res.status, 400);
      assert.equal(res.reason, 'Contact * requires Expires: 0');
    }
    assert.equal(await t.snapshot(), before);
  });

  it('* mixed with other contacts → 400', async () => {
    const t = setup();
    const res = await t.send({ contacts: ['*', '<sip:alice@192.0.2.10:5062>'], expires: 0 });
    assert.equal(res.status, 400);
  });

  it('* with the same Call-ID and a CSeq not above the stored one fails and removes nothing', async () => {
    const t = setup();
    await t.registrar.handle(request({ callId: 'x', cseq: 10, contacts: ['<sip:alice@192.0.2.10:5062>'], expires: 600 }), FLOW);
    const res = await t.registrar.handle(request({ callId: 'x', cseq: 10, contacts: ['*'], expires: 0 }), FLOW);
    assert.equal(res.status, 400);
    assert.equal((await t.bindings()).length, 1);
    // A different Call-ID may remove it whatever its CSeq.
    assert.equal((await t.registrar.handle(request({ callId: 'y', cseq: 1, contacts: ['*'], expires: 0 }), FLOW)).status, 200);
    assert.equal((await t.bindings()).length, 0);
  });
});

describe('query without Contact (RFC 3261 §10.3 step 8, §10.2.3)', () => {
  it('lists every current binding with its remaining expiry and changes nothing', async () => {
    const t = setup();
    await t.send({ contacts: ['<sip:alice@192.0.2.10:5062>;q=0.5'], expires: 600 });
    await t.send({ contacts: [`<sip:alice@192.0.2.10:5064;${APNS()}>;+sip.instance="${INSTANCE_A}";reg-id=1`], expires: 600 });
    const before = await t.snapshot();
    t.clock.advance(100_000);
    const res = await t.send();
    assert.equal(res.status, 200);
    const contacts = contactsOf(res);
    assert.equal(contacts.length, 2);
    for (const c of contacts) assert.equal(c.expires, 500);
    const plain = contacts.find((c) => c.uri === 'sip:alice@192.0.2.10:5062');
    assert.match(plain!.raw, /;q=0\.5/);
    const push = contacts.find((c) => c.uri.includes('pn-provider'));
    assert.match(push!.raw, /;\+sip\.instance="<urn:uuid:11111111-2222-3333-4444-555555555555>";reg-id=1/);
    assert.equal(res.getAll('feature-caps').length, 0, 'a query advertises no push support');
    assert.equal(await t.snapshot(), before);
  });

  it('an AOR without bindings gets a 200 with no Contact', async () => {
    const t = setup();
    const res = await t.send({ user: 'nobody' });
    assert.equal(res.status, 200);
    assert.equal(res.getAll('contact').length, 0);
  });
});

describe('Call-ID and CSeq ordering (RFC 3261 §10.3 step 7)', () => {
  const contact = '<sip:alice@192.0.2.10:5062>';
  it('the same Call-ID and CSeq again is a late retransmission: answered 200 again, nothing changes', async () => {
    const t = setup();
    assert.equal((await t.registrar.handle(request({ callId: 'c1', cseq: 5, contacts: [contact], expires: 600 }), FLOW)).status, 200);
    const before = await t.snapshot();
    const res = await t.registrar.handle(request({ callId: 'c1', cseq: 5, contacts: [contact], expires: 0 }), FLOW);
    assert.equal(res.status, 200);
    assert.equal(await t.snapshot(), before);
  });

  for (const [name, cseq] of [['lower', 4]] as const) {
    it(`same Call-ID with a ${name} CSeq is rejected and the binding is unchanged`, async () => {
      const t = setup();
      assert.equal((await t.registrar.handle(request({ callId: 'c1', cseq: 5, contacts: [contact], expires: 600 }), FLOW)).status, 200);
      const before = await t.snapshot();
      const res = await t.registrar.handle(request({ callId: 'c1', cseq, contacts: [contact], expires: 0 }), FLOW);
      assert.equal(res.status, 400);
      assert.equal(res.reason, 'Out-of-order CSeq for this binding');
      assert.equal(await t.snapshot(), before);
    });
  }

  it('same Call-ID with a higher CSeq updates', async () => {
    const t = setup();
    await t.registrar.handle(request({ callId: 'c1', cseq: 5, contacts: [contact], expires: 600 }), FLOW);
    assert.equal((await t.registrar.handle(request({ callId: 'c1', cseq: 6, contacts: [contact], expires: 900 }), FLOW)).status, 200);
    assert.equal(only(await t.bindings()).cseq, 6);
  });

  it('a different Call-ID is accepted whatever its CSeq (a rebooted UA)', async () => {
    const t = setup();
    await t.registrar.handle(request({ callId: 'c1', cseq: 50, contacts: [contact], expires: 600 }), FLOW);
    const res = await t.registrar.handle(request({ callId: 'c2', cseq: 1, contacts: [contact], expires: 900 }), FLOW);
    assert.equal(res.status, 200);
    const b = only(await t.bindings());
    assert.equal(b.callId, 'c2');
    assert.equal(b.cseq, 1);
  });
});

describe('q-values, several contacts, binding limit', () => {
  it('stores and echoes q-values', async () => {
    const t = setup();
    const res = await t.send({ contacts: ['<sip:alice@192.0.2.10:5062>;q=1.0', '<sip:alice@192.0.2.10:5064>;q=0.1'], expires: 600 });
    assert.equal(res.status, 200);
    const q = new Map((await t.bindings()).map((b) => [b.contact, b.q]));
    assert.equal(q.get('sip:alice@192.0.2.10:5062'), 1);
    assert.equal(q.get('sip:alice@192.0.2.10:5064'), 0.1);
    assert.ok(res.getAll('contact').some((c) => c.includes(';q=0.1')));
  });

  it('a malformed q-value → 400 and nothing stored', async () => {
    const t = setup();
    const res = await t.send({ contacts: ['<sip:alice@192.0.2.10:5062>;q=1.5'], expires: 600 });
    assert.equal(res.status, 400);
    assert.equal((await t.bindings()).length, 0);
  });

  it('several contacts in one REGISTER: adds, refreshes and removes together', async () => {
    const t = setup();
    await t.send({ contacts: ['<sip:alice@192.0.2.10:5062>', '<sip:alice@192.0.2.10:5064>'], expires: 600 });
    const res = await t.send({ contacts: ['<sip:alice@192.0.2.10:5062>;expires=0', '<sip:alice@192.0.2.10:5064>;expires=900', '<sip:alice@[2001:db8::1]:5062>'], expires: 600 });
    assert.equal(res.status, 200);
    const now = new Map((await t.bindings()).map((b) => [b.contact, Math.round((b.expiresAt - t.clock.now()) / 1000)]));
    assert.deepEqual([...now.entries()].sort(), [
      ['sip:alice@192.0.2.10:5064', 900],
      ['sip:alice@[2001:db8::1]:5062', 600],
    ]);
  });

  it('one bad contact among several rejects the whole REGISTER', async () => {
    const t = setup();
    const res = await t.send({ contacts: ['<sip:alice@192.0.2.10:5062>', '<sip:alice@192.0.2.10:5064>;expires=5'], expires: 600 });
    assert.equal(res.status, 423);
    assert.equal((await t.bindings()).length, 0);
  });

  it('a Contact that is not a SIP URI → 400', async () => {
    const t = setup();
    const res = await t.send({ contacts: ['<tel:+15551234567>'], expires: 600 });
    assert.equal(res.status, 400);
  });

  it('enforces registrar.maxBindingsPerAor; refreshing at the limit still works', async () => {
    const t = setup({ config: { registrar: { maxBindingsPerAor: 2 } } });
    await t.send({ contacts: ['<sip:alice@192.0.2.10:5062>', '<sip:alice@192.0.2.10:5064>'], expires: 600 });
    const before = await t.snapshot();
    const res = await t.send({ contacts: ['<sip:alice@192.0.2.10:5066>'], expires: 600 });
    assert.equal(res.status, 403);
    assert.match(res.reason, /max 2/);
    assert.equal(await t.snapshot(), before);
    assert.equal((await t.send({ contacts: ['<sip:alice@192.0.2.10:5064>'], expires: 900 })).status, 200);
    // Replacing one in the same REGISTER stays within the limit.
    assert.equal((await t.send({ contacts: ['<sip:alice@192.0.2.10:5064>;expires=0', '<sip:alice@192.0.2.10:5066>'], expires: 600 })).status, 200);
    assert.equal((await t.bindings()).length, 2);
  });

  it('the limit is per AOR', async () => {
    const t = setup({ config: { registrar: { maxBindingsPerAor: 1 } } });
    assert.equal((await t.send({ contacts: ['<sip:alice@192.0.2.10:5062>'], expires: 600 })).status, 200);
    assert.equal((await t.send({ user: 'bob', contacts: ['<sip:bob@192.0.2.10:5062>'], expires: 600 })).status, 200);
  });
});

describe('RFC 5626 instance identity (+sip.instance, reg-id)', () => {
  it('the same instance from a new IP, port and transport replaces its binding (a woken phone)', async () => {
    const removed: string[] = [];
    const registered: Array<[string, string | undefined]> = [];
    const t = setup({
      hooks: {
        onRemoved: (b, reason) => removed.push(`${b.id}:${reason}`),
        onRegistered: (e) => registered.push([e.binding.id, e.previous?.id]),
      },
    });
    const params = `;+sip.instance="${INSTANCE_A}";reg-id=1`;
    await t.send({ contacts: [`<sip:alice@192.0.2.10:5062;${APNS()}>${params}`], expires: 600 });
    const first = only(await t.bindings());
    t.clock.advance(30_000);
    const res = await t.send({ contacts: [`<sip:alice@198.51.100.7:40123;transport=tcp;${APNS()}>${params}`], expires: 600 }, FLOW_TCP);
    assert.equal(res.status, 200);
    const b = only(await t.bindings());
    assert.equal(b.id, first.id, 'same binding, refreshed');
    assert.equal(b.contact, `sip:alice@198.51.100.7:40123;transport=tcp;${APNS()}`);
    assert.equal(b.flow.protocol, 'tcp');
    assert.equal(b.flow.remoteAddress, '198.51.100.7');
    assert.equal(b.flow.connectionId, 'c-42');
    assert.equal(b.registeredAt, first.registeredAt, 'same push token: registeredAt kept');
    assert.equal(only(contactsOf(res)).uri, b.contact);
    assert.deepEqual(removed, []);
    assert.deepEqual(registered, [
      [first.id, undefined],
      [first.id, first.id],
    ]);
  });

  it('instance without reg-id is matched by instance alone', async () => {
    const t = setup();
    await t.send({ contacts: [`<sip:alice@192.0.2.10:5062>;+sip.instance="${INSTANCE_A}"`], expires: 600 });
    await t.send({ contacts: [`<sip:alice@192.0.2.99:6000>;+sip.instance="${INSTANCE_A}"`], expires: 600 });
    assert.equal(only(await t.bindings()).contact, 'sip:alice@192.0.2.99:6000');
  });

  it('different reg-ids of one instance are two flows; another instance is another binding', async () => {
    const t = setup();
    await t.send({ contacts: [`<sip:alice@192.0.2.10:5062>;+sip.instance="${INSTANCE_A}";reg-id=1`], expires: 600 });
    await t.send({ contacts: [`<sip:alice@192.0.2.10:5064>;+sip.instance="${INSTANCE_A}";reg-id=2`], expires: 600 });
    await t.send({ contacts: [`<sip:alice@192.0.2.10:5062>;+sip.instance="${INSTANCE_B}";reg-id=1`], expires: 600 });
    assert.equal((await t.bindings()).length, 3);
  });

  it('the flows of one instance (reg-id 1 and 2) share its push token and both stay (RFC 5626 §4.2)', async () => {
    const removed: string[] = [];
    const t = setup({ hooks: { onRemoved: (b, reason) => removed.push(reason) } });
    const inst = `;+sip.instance="${INSTANCE_A}"`;
    await t.send({ contacts: [`<sip:alice@192.0.2.10:5062;ob;${APNS()}>${inst};reg-id=1`], expires: 600 });
    await t.send({ callId: 'flow-2', contacts: [`<sip:alice@[2001:db8::1]:5062;ob;${APNS()}>${inst};reg-id=2`], expires: 600 });
    assert.deepEqual((await t.bindings()).map((b) => b.regId).sort(), [1, 2]);
    assert.deepEqual(removed, []);
  });

  it('a malformed Supported header gets its 400 before the store changes', async () => {
    let registered = 0;
    const t = setup({ hooks: { onRegistered: () => registered++ } });
    const res = await t.send({
      contacts: [`<sip:alice@192.0.2.10:5062;ob>;+sip.instance="${INSTANCE_A}";reg-id=1`],
      expires: 600,
      headers: [['Supported', 'outbound, bad@tag']],
    });
    assert.equal(res.status, 400);
    assert.match(res.reason, /option tag/i);
    assert.equal((await t.bindings()).length, 0);
    assert.equal(registered, 0);
  });

  it('the instance removes its binding with expires=0 from whatever address it has now', async () => {
    const t = setup();
    await t.send({ contacts: [`<sip:alice@192.0.2.10:5062>;+sip.instance="${INSTANCE_A}";reg-id=1`], expires: 600 });
    await t.send({ contacts: [`<sip:alice@203.0.113.5:7000>;+sip.instance="${INSTANCE_A}";reg-id=1`], expires: 0 });
    assert.equal((await t.bindings()).length, 0);
  });

  it('Require: outbound in the 200 when the UA supports outbound and registered a reg-id (RFC 5626 §6)', async () => {
    const t = setup();
    const res = await t.send({ contacts: [`<sip:alice@192.0.2.10:5062;ob>;+sip.instance="${INSTANCE_A}";reg-id=1`], expires: 600, headers: [['Supported', 'outbound, path']] });
    assert.equal(res.get('require'), 'outbound');
  });

  describe('outbound at the registrar (RFC 5626 §6)', () => {
    const OB_CONTACT = `<sip:alice@192.0.2.10:5062;ob>;+sip.instance="${INSTANCE_A}";reg-id=1`;
    /** A second Via: the REGISTER came through a proxy, whose Path entry is `path`. */
    const viaProxy = (path: string): Array<[string, string]> => [
      ['Via', 'SIP/2.0/UDP edge.example.net;branch=z9hG4bK-edge1'],
      ['Path', path],
      ['Supported', 'outbound, path'],
    ];

    it('a reg-id without +sip.instance is ignored: a plain binding, no Require: outbound', async () => {
      const t = setup();
      const res = await t.send({ contacts: ['<sip:alice@192.0.2.10:5062;ob>;reg-id=1'], expires: 600, headers: [['Supported', 'outbound']] });
      assert.equal(res.status, 200);
      assert.equal(only(await t.bindings()).regId, undefined);
      assert.equal(res.get('require'), undefined);
      assert.doesNotMatch(only(contactsOf(res)).raw, /reg-id/);
    });

    it('through an edge proxy without `ob` in its Path: 439 for a UA that asked for outbound, and the store is unchanged', async () => {
      const t = setup();
      const res = await t.send({ contacts: [OB_CONTACT], expires: 600, headers: viaProxy('<sip:edge.example.net;lr>') });
      assert.equal(res.status, 439);
      assert.equal(res.reason, 'First Hop Lacks Outbound Support');
      assert.deepEqual(await t.bindings(), []);
    });

    it('through an edge proxy without `ob`, a UA that did not ask for outbound registers without its reg-id', async () => {
      const t = setup();
      const res = await t.send({ contacts: [OB_CONTACT], expires: 600, headers: [['Via', 'SIP/2.0/UDP edge.example.net;branch=z9hG4bK-edge2'], ['Path', '<sip:edge.example.net;lr>']] });
      assert.equal(res.status, 200);
      assert.equal(only(await t.bindings()).regId, undefined);
    });

    it('through an edge proxy with `ob` (the last Path entry, nearest the UA): outbound applies, reg-id kept, no Flow-Timer from us', async () => {
      const t = setup();
      const res = await t.send({ contacts: [OB_CONTACT], expires: 600, headers: [...viaProxy('<sip:core.example.net;lr>'), ['Path', '<sip:edge.example.net;lr;ob>']] });
      assert.equal(res.status, 200);
      assert.equal(only(await t.bindings()).regId, 1);
      assert.equal(res.get('require'), 'outbound');
      assert.equal(res.get('flow-timer'), undefined, 'the edge proxy sends Flow-Timer, not a registrar behind it');
    });

    it('two Contacts registering, one with a reg-id: 400, nothing stored', async () => {
      const t = setup();
      const res = await t.send({ contacts: [OB_CONTACT, '<sip:alice@192.0.2.10:5070>'], expires: 600, headers: [['Supported', 'outbound']] });
      assert.equal(res.status, 400);
      assert.match(res.reason, /reg-id/);
      assert.deepEqual(await t.bindings(), []);
      // Removing another Contact in the same REGISTER is allowed.
      const ok = await t.send({ contacts: [OB_CONTACT, '<sip:alice@192.0.2.10:5070>;expires=0'], expires: 600, headers: [['Supported', 'outbound']] });
      assert.equal(ok.status, 200);
    });

    it('Flow-Timer over a connection that ends here: 3/4 of proxy.liveFlowSeconds by default, or registrar.flowTimerSeconds; none over UDP or without outbound', async () => {
      const tcpContact = `<sip:alice@198.51.100.7:40123;transport=tcp;ob>;+sip.instance="${INSTANCE_A}";reg-id=1`;
      const t = setup();
      const res = await t.send({ contacts: [tcpContact], expires: 600, headers: [['Supported', 'outbound']] }, FLOW_TCP);
      assert.equal(res.status, 200);
      assert.equal(res.get('require'), 'outbound');
      assert.equal(res.get('flow-timer'), '90');
      const udp = await t.send({ contacts: [OB_CONTACT], expires: 600, headers: [['Supported', 'outbound']] });
      assert.equal(udp.get('flow-timer'), undefined, 'UDP: no flow counts as live, the UA keeps its own NAT keep-alive');
      const noOutbound = await setup().send({ contacts: [tcpContact], expires: 600 }, FLOW_TCP);
      assert.equal(noOutbound.get('flow-timer'), undefined);

      const configured = setup({ config: { registrar: { flowTimerSeconds: 25 }, proxy: { liveFlowSeconds: 60 } } as ConfigInput });
      assert.equal((await configured.send({ contacts: [tcpContact], expires: 600, headers: [['Supported', 'outbound']] }, FLOW_TCP)).get('flow-timer'), '25');
      const off = setup({ config: { registrar: { flowTimerSeconds: 0 } } as ConfigInput });
      assert.equal((await off.send({ contacts: [tcpContact], expires: 600, headers: [['Supported', 'outbound']] }, FLOW_TCP)).get('flow-timer'), undefined);
    });
  });

  describe('GRUU (RFC 5627 §5.4)', () => {
    it('a UA that supports gruu gets the public and a temporary GRUU of each instance; one that does not gets none', async () => {
      const t = setup();
      const plain = await t.send({ contacts: [`<sip:alice@192.0.2.10:5062>;+sip.instance="${INSTANCE_A}"`], expires: 600 });
      assert.doesNotMatch(only(contactsOf(plain)).raw, /gruu/);
      const res = await t.send({ contacts: [`<sip:alice@192.0.2.10:5062>;+sip.instance="${INSTANCE_A}"`, '<sip:alice@192.0.2.10:5070>'], expires: 600, headers: [['Supported', 'gruu']] });
      assert.equal(res.status, 200);
      const [withInstance, without] = [contactsOf(res).find((c) => c.raw.includes('+sip.instance'))!, contactsOf(res).find((c) => !c.raw.includes('+sip.instance'))!];
      assert.match(withInstance.raw, /;pub-gruu="sip:alice@example\.com;gr=urn:uuid:11111111-2222-3333-4444-555555555555"/);
      const id = (await t.bindings()).find((b) => b.instanceId)!.id;
      const temp = /;temp-gruu="sip:tgruu\.([0-9a-f]+)\.([A-Za-z0-9_-]{8})@example\.com;gr"/.exec(withInstance.raw);
      assert.ok(temp, withInstance.raw);
      assert.equal(temp[1], id, 'the temporary GRUU names the binding, not the AOR');
      assert.doesNotMatch(without.raw, /gruu/, 'no instance, no GRUU');
    });

    it('the temporary GRUU stays the same across refreshes of one registration and changes with a new Call-ID', async () => {
      const t = setup();
      const contact = `<sip:alice@192.0.2.10:5062>;+sip.instance="${INSTANCE_A}"`;
      const tempOf = (r: SipResponse) => /temp-gruu="([^"]+)"/.exec(only(contactsOf(r)).raw)![1];
      const first = tempOf(await t.send({ contacts: [contact], expires: 600, headers: [['Supported', 'gruu']] }));
      const refresh = tempOf(await t.send({ contacts: [contact], expires: 600, headers: [['Supported', 'gruu']] }));
      assert.equal(refresh, first);
      const rebooted = tempOf(await t.registrar.handle(t.request({ callId: 'rebooted@192.0.2.10', contacts: [contact], expires: 600, headers: [['Supported', 'gruu']] }), FLOW));
      assert.notEqual(rebooted, first);
      assert.equal(rebooted.split('.')[1], first.split('.')[1], 'same binding: both stay valid');
    });

    it('an instance id that is not a URN, or that a gr parameter could not carry, gets no GRUU', async () => {
      for (const instance of ['<not-a-urn>', '<urn:x-dev:a;b>', '<urn:x-dev:a?b>']) {
        const t = setup();
        const res = await t.send({ contacts: [`<sip:alice@192.0.2.10:5062>;+sip.instance="${instance}"`], expires: 600, headers: [['Supported', 'gruu']] });
        assert.equal(res.status, 200);
        assert.doesNotMatch(only(contactsOf(res)).raw, /gruu/, instance);
      }
    });
  });

  it('Path is stored and echoed (RFC 3327 §5.3)', async () => {
    const t = setup();
    const res = await t.send({ contacts: ['<sip:alice@192.0.2.10:5062>'], expires: 600, headers: [['Path', '<sip:edge.example.com;lr>'], ['Supported', 'path']] });
    assert.deepEqual(res.getAll('path'), ['<sip:edge.example.com;lr>']);
    assert.deepEqual(only(await t.bindings()).path, ['<sip:edge.example.com;lr>']);
  });
});

describe('RFC 8599 push bindings (§5.6.1)', () => {
  it('a supported provider with pn-prid: push binding and one Feature-Caps "+sip.pns" (no pnsreg without the tag)', async () => {
    const t = setup();
    const res = await t.send({ contacts: [`<sip:alice@192.0.2.10:5062;${APNS()}>;+sip.instance="${INSTANCE_A}"`], expires: 3600 });
    assert.equal(res.status, 200);
    assert.deepEqual(res.getAll('feature-caps'), ['*;+sip.pns="apns"']);
    const b = only(await t.bindings());
    assert.deepEqual(b.push, { provider: 'apns', prid: TOKEN, param: 'ABCDE12345.com.example.app.voip', environment: 'production', form: 'rfc8599' });
    assert.equal(b.pnsreg, false);
  });

  it('with the UA\'s +sip.pnsreg media feature tag, +sip.pnsreg="N" (N > 120) goes in the same Feature-Caps', async () => {
    const t = setup();
    const res = await t.send({ contacts: [`<sip:alice@192.0.2.10:5062;${APNS()}>;+sip.pnsreg`], expires: 3600 });
    const fc = only(res.getAll('feature-caps'));
    assert.equal(fc, '*;+sip.pns="apns";+sip.pnsreg="130"');
    const n = Number(/\+sip\.pnsreg="(\d+)"/.exec(fc)![1]);
    assert.ok(n > 120);
    assert.equal(only(await t.bindings()).pnsreg, true);
  });

  it('PURR (§6.2.1, registrar.purr): every 2xx carries +sip.pnspurr in the Feature-Caps of its PNS; rotated, older ones still resolve', async () => {
    const t = setup({ config: { registrar: { purr: { enabled: true, rotateSeconds: 3600, keep: 2 } } } });
    const contact = `<sip:alice@192.0.2.10:5062;${APNS()}>;+sip.instance="${INSTANCE_A}";+sip.pnsreg`;
    const first = await t.send({ contacts: [contact], expires: 86400 });
    const fc = only(first.getAll('feature-caps'));
    const m = /^\*;\+sip\.pns="apns";\+sip\.pnsreg="130";\+sip\.pnspurr="([0-9a-f]{32})"$/.exec(fc);
    assert.ok(m, fc);
    const purr1 = m[1];
    assert.equal((await t.store.findByPurr(purr1))?.aor, `sip:alice@${DOMAIN}`);
    // A refresh within the rotation period keeps the PURR.
    t.clock.advance(600_000);
    const again = await t.send({ contacts: [contact], expires: 86400 });
    assert.match(only(again.getAll('feature-caps')), new RegExp(`\\+sip\\.pnspurr="${purr1}"$`));
    // After it: a new PURR (MUST, even with unchanged pn-*), the old one still finds the binding.
    t.clock.advance(3_600_000);
    const rotated = await t.send({ contacts: [contact], expires: 86400 });
    const purr2 = /\+sip\.pnspurr="([0-9a-f]{32})"/.exec(only(rotated.getAll('feature-caps')))![1];
    assert.notEqual(purr2, purr1);
    assert.equal((await t.store.findByPurr(purr1))?.id, (await t.store.findByPurr(purr2))?.id);
    // Only `keep` PURRs are kept.
    t.clock.advance(3_600_000);
    await t.send({ contacts: [contact], expires: 86400 });
    assert.equal(await t.store.findByPurr(purr1), undefined);
    assert.ok(await t.store.findByPurr(purr2));
    assert.equal(only(await t.bindings()).purrs?.length, 2);
    // Unregistered: no PURR resolves any more.
    await t.send({ contacts: [`<sip:alice@192.0.2.10:5062;pn-provider=apns;pn-param=ABCDE12345.com.example.app.voip>;+sip.instance="${INSTANCE_A}"`], expires: 0 });
    assert.equal(await t.store.findByPurr(purr2), undefined);
  });

  it('without registrar.purr (the default) no PURR is issued', async () => {
    const t = setup();
    const res = await t.send({ contacts: [`<sip:alice@192.0.2.10:5062;${APNS()}>`], expires: 3600 });
    assert.deepEqual(res.getAll('feature-caps'), ['*;+sip.pns="apns"']);
    assert.equal(only(await t.bindings()).purrs, undefined);
  });

  it('registrar.pnsregSeconds sets the advertised value', async () => {
    const t = setup({ config: { registrar: { pnsregSeconds: 600 } } });
    const res = await t.send({ contacts: [`<sip:alice@192.0.2.10:5062;${APNS()}>;+sip.pnsreg`], expires: 3600 });
    assert.equal(only(res.getAll('feature-caps')), '*;+sip.pns="apns";+sip.pnsreg="600"');
  });

  it('two providers in one REGISTER: one Feature-Caps header per provider (§5.4)', async () => {
    const t = setup();
    const res = await t.send({
      contacts: [`<sip:alice@192.0.2.10:5062;${APNS()}>`, `<sip:alice@192.0.2.10:5064;pn-provider=fcm;pn-prid=${FCM_TOKEN};pn-param=my-project>`],
      expires: 3600,
    });
    assert.equal(res.status, 200);
    assert.deepEqual(res.getAll('feature-caps').sort(), ['*;+sip.pns="apns"', '*;+sip.pns="fcm"']);
    for (const fc of res.getAll('feature-caps')) assert.equal(fc.split('+sip.pns=').length, 2, 'one PNS per header');
  });

  it('capability query with an empty pn-provider: one Feature-Caps per supported provider, no push binding', async () => {
    const t = setup();
    const res = await t.send({ contacts: ['<sip:alice@192.0.2.10:5062;pn-provider>'], expires: 600 });
    assert.equal(res.status, 200);
    assert.deepEqual(res.getAll('feature-caps'), ['*;+sip.pns="apns"', '*;+sip.pns="fcm"', '*;+sip.pns="webpush"']);
    for (const b of await t.bindings()) assert.equal(b.push, undefined, 'a query never creates a push binding');
  });

  it('+sip.vapid (§5.4, §12): the VAPID key in the webpush Feature-Caps of a push 2xx and of a query 2xx, nowhere else', async () => {
    const key = 'BNcRdreALRFXTkOOUHK1EtK2wtaz5Ry4YfYCA_0QTpQtUbVlUls0VJXg7A8u-Ts1XbjhazAkj7I99e8QcYP7DkM';
    const t = setup({ vapid: key });
    const sub = 'https%3A%2F%2Fpush.example.net%2Fs%2F1';
    const push = await t.send({ contacts: [`<sip:alice@192.0.2.10:5062;pn-provider=webpush;pn-prid=${sub}>`], expires: 3600 });
    assert.equal(push.status, 200);
    assert.deepEqual(push.getAll('feature-caps'), [`*;+sip.pns="webpush";+sip.vapid="${key}"`]);
    const query = await t.send({ contacts: ['<sip:alice@192.0.2.10:5062;pn-provider>'], expires: 600 });
    assert.deepEqual(query.getAll('feature-caps'), ['*;+sip.pns="apns"', '*;+sip.pns="fcm"', `*;+sip.pns="webpush";+sip.vapid="${key}"`]);
  });

  it('capability query for a specific supported provider: only that provider', async () => {
    const t = setup();
    const res = await t.send({ contacts: ['<sip:alice@192.0.2.10:5062;pn-provider=fcm>'], expires: 600 });
    assert.equal(res.status, 200);
    assert.deepEqual(res.getAll('feature-caps'), ['*;+sip.pns="fcm"']);
    for (const b of await t.bindings()) assert.equal(b.push, undefined);
  });

  it('capability query for an unsupported provider: 555 as the last hop, else 200 without Feature-Caps', async () => {
    const t = setup();
    const res = await t.send({ contacts: ['<sip:alice@192.0.2.10:5062;pn-provider=acme>'], expires: 600 });
    assert.equal(res.status, 555);
    assert.equal(res.reason, 'Push Notification Service Not Supported');
    assert.equal((await t.bindings()).length, 0);
    const fwd = setup({ config: { registrar: { lastHop: false } } });
    const res2 = await fwd.send({ contacts: ['<sip:alice@192.0.2.10:5062;pn-provider=acme>'], expires: 600 });
    assert.equal(res2.status, 200);
    assert.equal(res2.getAll('feature-caps').length, 0);
  });

  it('empty-provider query when no provider is configured: 555 as the last hop (§4.1.5)', async () => {
    const t = setup({ providers: [] });
    const res = await t.send({ contacts: ['<sip:alice@192.0.2.10:5062;pn-provider>'], expires: 600 });
    assert.equal(res.status, 555);
    assert.equal((await t.bindings()).length, 0);
  });

  it('unsupported provider with a prid: 555 and nothing stored; not the last hop: a plain binding, no Feature-Caps', async () => {
    const t = setup();
    const res = await t.send({ contacts: ['<sip:alice@192.0.2.10:5062;pn-provider=acme;pn-prid=abc123;pn-param=x>'], expires: 600 });
    assert.equal(res.status, 555);
    assert.equal((await t.store.all()).length, 0);
    const fwd = setup({ config: { registrar: { lastHop: false } } });
    const res2 = await fwd.send({ contacts: ['<sip:alice@192.0.2.10:5062;pn-provider=acme;pn-prid=abc123;pn-param=x>'], expires: 600 });
    assert.equal(res2.status, 200);
    assert.equal(res2.getAll('feature-caps').length, 0);
    assert.equal(only(await fwd.bindings()).push, undefined);
  });

  it('APNs without the required pn-param → 555 (missing information, §5.6.1.1 step 2)', async () => {
    const t = setup();
    const res = await t.send({ contacts: [`<sip:alice@192.0.2.10:5062;pn-provider=apns;pn-prid=${TOKEN}>`], expires: 600 });
    assert.equal(res.status, 555);
  });

  it('+sip.pns already in the REGISTER (a proxy nearer the UA pushes): plain binding, no Feature-Caps', async () => {
    const t = setup();
    const res = await t.send({ contacts: [`<sip:alice@192.0.2.10:5062;${APNS()}>;+sip.pnsreg`], expires: 600, headers: [['Feature-Caps', '*;+sip.pns="apns"']] });
    assert.equal(res.status, 200);
    assert.equal(res.getAll('feature-caps').length, 0);
    const b = only(await t.bindings());
    assert.equal(b.push, undefined);
  });

  it('a malformed APNs token → 400 and nothing stored', async () => {
    const t = setup();
    const res = await t.send({ contacts: ['<sip:alice@192.0.2.10:5062;pn-provider=apns;pn-prid=not-a-token;pn-param=T.b.voip>'], expires: 600 });
    assert.equal(res.status, 400);
    assert.match(res.reason, /Malformed pn-prid/);
  });

  it('pn-provider=apns.dev and pn-apns-env=sandbox give sandbox bindings; apnsDefaultEnvironment applies otherwise', async () => {
    const t = setup();
    await t.send({ contacts: [`<sip:alice@192.0.2.10:5062;pn-provider=apns.dev;pn-prid=${TOKEN};pn-param=ABCDE12345.com.example.app.voip>`], expires: 600 });
    await t.send({ user: 'bob', contacts: [`<sip:bob@192.0.2.10:5062;${APNS(TOKEN2, ';pn-apns-env=sandbox')}>`], expires: 600 });
    assert.equal(only(await t.bindings()).push?.environment, 'sandbox');
    assert.equal(only(await t.bindings()).push?.provider, 'apns');
    assert.equal(only(await t.bindings('bob')).push?.environment, 'sandbox');
    const s = setup({ config: { registrar: { apnsDefaultEnvironment: 'sandbox' } } });
    const res = await s.send({ contacts: [`<sip:alice@192.0.2.10:5062;${APNS()}>`], expires: 600 });
    assert.deepEqual(res.getAll('feature-caps'), ['*;+sip.pns="apns"'], 'the PNS type stays apns');
    assert.equal(only(await s.bindings()).push?.environment, 'sandbox');
  });

  it('legacy pn-type/pn-tok/app-id: app-id ".dev" means sandbox; Feature-Caps names the normalised provider', async () => {
    const t = setup({ config: { registrar: { apnsLegacyTeamId: 'TEAM999' } } });
    const res = await t.send({ contacts: [`<sip:alice@192.0.2.10:5062;pn-type=apple;pn-tok=${TOKEN};app-id=com.example.app.dev>`], expires: 600 });
    assert.equal(res.status, 200);
    assert.deepEqual(res.getAll('feature-caps'), ['*;+sip.pns="apns"']);
    assert.deepEqual(only(await t.bindings()).push, { provider: 'apns', prid: TOKEN, param: 'TEAM999.com.example.app.voip', environment: 'sandbox', form: 'legacy' });
  });

  it('Flexisip two-token form: the voip token is the PRID, the remote one is kept for alerts', async () => {
    const t = setup();
    const res = await t.send({
      contacts: [`<sip:alice@192.0.2.10:5062;pn-provider=apns;pn-param=ABCDE12345.com.example.app.voip&remote;pn-prid=${TOKEN}:voip&${TOKEN2}:remote>`],
      expires: 600,
    });
    assert.equal(res.status, 200);
    assert.deepEqual(only(await t.bindings()).push, {
      provider: 'apns',
      prid: TOKEN,
      param: 'ABCDE12345.com.example.app.voip',
      environment: 'production',
      alertPrid: TOKEN2,
      form: 'flexisip-multi',
    });
  });

  it('Flexisip form with a services/tokens mismatch → 400 with the count in the reason', async () => {
    const t = setup();
    const res = await t.send({ contacts: [`<sip:alice@192.0.2.10:5062;pn-provider=apns;pn-param=ABCDE12345.com.example.app.voip;pn-prid=${TOKEN}:voip&${TOKEN2}:remote>`], expires: 600 });
    assert.equal(res.status, 400);
    assert.equal(res.reason, 'pn-param declares 1 service(s) but pn-prid has 2 token(s)');
    assert.equal((await t.bindings()).length, 0);
  });

  it('token in an X-header by configuration (registrar.tokenHeader)', async () => {
    const t = setup({ config: { registrar: { tokenHeader: { name: 'X-Token', provider: 'apns', param: 'ABCDE12345.com.example.app.voip', environment: 'sandbox' } } } });
    const res = await t.send({ contacts: ['<sip:alice@192.0.2.10:5062>'], expires: 600, headers: [['X-Token', TOKEN]] });
    assert.equal(res.status, 200);
    assert.deepEqual(res.getAll('feature-caps'), ['*;+sip.pns="apns"']);
    assert.deepEqual(only(await t.bindings()).push, { provider: 'apns', prid: TOKEN, param: 'ABCDE12345.com.example.app.voip', environment: 'sandbox', form: 'header' });
    // Without the header: a plain binding.
    await t.send({ user: 'bob', contacts: ['<sip:bob@192.0.2.10:5062>'], expires: 600 });
    assert.equal(only(await t.bindings('bob')).push, undefined);
  });

  it('a new binding with the same push token as another instance replaces it in the same AOR only', async () => {
    const removed: string[] = [];
    const t = setup({ hooks: { onRemoved: (b, reason) => removed.push(`${b.aor}:${reason}`) } });
    // Bob's device (another AOR) carries the same token: must survive.
    await t.send({ user: 'bob', contacts: [`<sip:bob@192.0.2.20:5062;${APNS()}>;+sip.instance="${INSTANCE_B}"`], expires: 600 });
    await t.send({ contacts: [`<sip:alice@192.0.2.10:5062;${APNS()}>;+sip.instance="${INSTANCE_A}"`], expires: 600 });
    const old = only(await t.bindings());
    // The app is reinstalled: new instance id, same token.
    const res = await t.send({ contacts: [`<sip:alice@192.0.2.10:5070;${APNS()}>;+sip.instance="${INSTANCE_B}"`], expires: 600 });
    assert.equal(res.status, 200);
    const now = only(await t.bindings());
    assert.notEqual(now.id, old.id);
    assert.equal(now.instanceId, INSTANCE_B);
    assert.equal(only(contactsOf(res)).uri, now.contact, 'the 200 does not list the replaced binding');
    assert.equal(only(await t.bindings('bob')).push?.prid, TOKEN);
    assert.deepEqual(removed, ['sip:alice@example.com:same-token']);
    assert.equal((await t.store.findByPushToken('apns', TOKEN)).length, 2);
  });

  it('a new push token for the same instance sets a new registeredAt', async () => {
    const t = setup();
    const inst = `;+sip.instance="${INSTANCE_A}"`;
    await t.send({ contacts: [`<sip:alice@192.0.2.10:5062;${APNS()}>${inst}`], expires: 600 });
    const first = only(await t.bindings());
    t.clock.advance(10_000);
    await t.send({ contacts: [`<sip:alice@192.0.2.10:5062;${APNS(TOKEN2)}>${inst}`], expires: 600 });
    const b = only(await t.bindings());
    assert.equal(b.id, first.id);
    assert.equal(b.push?.prid, TOKEN2);
    assert.equal(b.registeredAt, first.registeredAt + 10_000);
    assert.deepEqual(await t.store.findByPushToken('apns', TOKEN), []);
  });

  it('removal REGISTER without pn-prid (RFC 8599 §4.1.2) removes the push binding (no instance id)', async () => {
    const t = setup();
    await t.send({ contacts: [`<sip:alice@192.0.2.10:5062;${APNS()}>`, '<sip:alice@192.0.2.10:5064>'], expires: 600 });
    assert.equal((await t.bindings()).length, 2);
    const res = await t.send({ contacts: ['<sip:alice@192.0.2.10:5062;pn-provider=apns;pn-param=ABCDE12345.com.example.app.voip>'], expires: 0 });
    assert.equal(res.status, 200);
    // pn-provider without pn-prid is also the shape of a capability query (§5.6.1.2): the
    // 2xx says the PNS type is supported, which promises nothing for the removed binding.
    assert.deepEqual(res.getAll('feature-caps'), ['*;+sip.pns="apns"']);
    assert.deepEqual((await t.bindings()).map((b) => b.contact), ['sip:alice@192.0.2.10:5064']);
    assert.deepEqual(await t.store.findByPushToken('apns', TOKEN), [], 'no further push to that PRID (§5.5)');
  });

  it('removal REGISTER without pn-prid, with +sip.instance', async () => {
    const t = setup();
    const inst = `;+sip.instance="${INSTANCE_A}";reg-id=1`;
    await t.send({ contacts: [`<sip:alice@192.0.2.10:5062;${APNS()}>${inst}`], expires: 600 });
    const res = await t.send({ contacts: [`<sip:alice@192.0.2.10:5062;pn-provider=apns;pn-param=ABCDE12345.com.example.app.voip>${inst}`], expires: 0 });
    assert.equal(res.status, 200);
    assert.equal((await t.bindings()).length, 0);
  });

  it('a plain binding and a push binding at the same address are distinct (pn-* must match, §5.3)', async () => {
    const t = setup();
    await t.send({ contacts: ['<sip:alice@192.0.2.10:5062>'], expires: 600 });
    await t.send({ contacts: [`<sip:alice@192.0.2.10:5062;${APNS()}>`], expires: 600 });
    assert.equal((await t.bindings()).length, 2);
  });
});

describe('domains and Require (RFC 3261 §10.3 steps 1-2)', () => {
  it('Request-URI or To domain not served → 404', async () => {
    const t = setup({ config: { domains: ['example.com'] } });
    assert.equal((await t.send({ ruri: 'sip:other.org', contacts: ['<sip:alice@192.0.2.10:5062>'] })).status, 404);
    assert.equal((await t.send({ toHost: 'other.org', contacts: ['<sip:alice@192.0.2.10:5062>'] })).status, 404);
    assert.equal((await t.store.all()).length, 0);
    assert.equal((await t.send({ ruri: 'sip:EXAMPLE.com', contacts: ['<sip:alice@192.0.2.10:5062>'] })).status, 200);
  });

  it('no domains configured: every domain is local', async () => {
    const t = setup();
    assert.equal((await t.send({ ruri: 'sip:anything.test', contacts: ['<sip:alice@192.0.2.10:5062>'] })).status, 200);
  });

  it('Require with an unknown extension → 420 with Unsupported listing it', async () => {
    const t = setup();
    const res = await t.send({ contacts: ['<sip:alice@192.0.2.10:5062>'], headers: [['Require', 'path, foo, bar']] });
    assert.equal(res.status, 420);
    assert.equal(res.get('unsupported'), 'foo, bar');
    assert.equal((await t.store.all()).length, 0);
    assert.equal((await t.send({ contacts: ['<sip:alice@192.0.2.10:5062>'], headers: [['Require', 'path, outbound']] })).status, 200);
    // GRUU (RFC 5627) is supported, so requiring it is fine.
    assert.equal((await t.send({ contacts: ['<sip:alice@192.0.2.10:5062>'], headers: [['Require', 'gruu']] })).status, 200);
    assert.equal((await t.send({ contacts: ['<sip:alice@192.0.2.10:5062>'], headers: [['Supported', 'gruu, path']] })).status, 200);
  });
});

// ---------------------------------------------------------------------------------------
// Digest authentication

type Alg = 'MD5' | 'SHA-256';
const H = (alg: Alg, s: string) => createHash(alg === 'MD5' ? 'md5' : 'sha256').update(s).digest('hex');

/** RFC 7616 §3.4.1: response = KD(HA1, nonce:nc:cnonce:qop:HA2) with qop, else KD(HA1, nonce:HA2). */
function digestResponse(o: { alg: Alg; ha1: string; method: string; uri: string; nonce: string; nc?: string; cnonce?: string; qop?: string }): string {
  const ha2 = H(o.alg, `${o.method}:${o.uri}`);
  return o.qop ? H(o.alg, `${o.ha1}:${o.nonce}:${o.nc}:${o.cnonce}:${o.qop}:${ha2}`) : H(o.alg, `${o.ha1}:${o.nonce}:${ha2}`);
}

function challengeOf(res: SipResponse, alg: Alg): { realm: string; nonce: string; stale: boolean; raw: string } {
  const raw = res.getAll('www-authenticate').find((c) => c.includes(`algorithm=${alg}`));
  assert.ok(raw, `a ${alg} challenge in ${res.getAll('www-authenticate').join(' | ')}`);
  return { realm: /realm="([^"]*)"/.exec(raw)![1], nonce: /nonce="([^"]*)"/.exec(raw)![1], stale: /stale=true/i.test(raw), raw };
}

function authorization(o: { user: string; password?: string; ha1?: string; realm: string; nonce: string; alg: Alg; nc?: string; cnonce?: string; qop?: string | null; uri?: string }): string {
  const uri = o.uri ?? `sip:${DOMAIN}`;
  const ha1 = o.ha1 ?? H(o.alg, `${o.user}:${o.realm}:${o.password}`);
  const qop = o.qop === null ? undefined : (o.qop ?? 'auth');
  const nc = o.nc ?? '00000001';
  const cnonce = o.cnonce ?? 'c0ffee';
  const response = digestResponse({ alg: o.alg, ha1, method: 'REGISTER', uri, nonce: o.nonce, nc, cnonce, qop });
  let v = `Digest username="${o.user}", realm="${o.realm}", nonce="${o.nonce}", uri="${uri}", response="${response}", algorithm=${o.alg}`;
  if (qop) v += `, qop=${qop}, nc=${nc}, cnonce="${cnonce}"`;
  return v;
}

describe('digest authentication (RFC 3261 §22, RFC 7616, RFC 8760)', () => {
  it('the hand-computed formulas reproduce the RFC 7616 §3.9.1 example (MD5 and SHA-256)', () => {
    const common = { method: 'GET', uri: '/dir/index.html', nonce: '7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v', nc: '00000001', cnonce: 'f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ', qop: 'auth' };
    const a1 = 'Mufasa:http-auth@example.org:Circle of Life';
    assert.equal(digestResponse({ alg: 'MD5', ha1: H('MD5', a1), ...common }), '8ca523f5e9506fed4657c9700eebdbec');
    assert.equal(digestResponse({ alg: 'SHA-256', ha1: H('SHA-256', a1), ...common }), '753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1');
  });

  const users: DigestUser[] = [
    { username: 'alice', password: 'alice-secret' },
    { username: 'bob', ha1: H('MD5', `bob:${DOMAIN}:bob-secret`) },
    { username: 'carol', ha1Sha256: H('SHA-256', `carol:${DOMAIN}:carol-secret`) },
  ];
  const contact = '<sip:alice@192.0.2.10:5062>';

  it('no credentials → 401 with a SHA-256 then an MD5 challenge, qop="auth", nothing stored', async () => {
    const t = setup({ users });
    const res = await t.send({ contacts: [contact], expires: 600 });
    assert.equal(res.status, 401);
    const challenges = res.getAll('www-authenticate');
    assert.equal(challenges.length, 2);
    assert.match(challenges[0], /^Digest realm="example.com", nonce="[^"]+", algorithm=SHA-256, qop="auth"$/);
    assert.match(challenges[1], /algorithm=MD5/);
    assert.equal(challengeOf(res, 'SHA-256').nonce, challengeOf(res, 'MD5').nonce);
    assert.equal((await t.store.all()).length, 0);
  });

  for (const alg of ['SHA-256', 'MD5'] as const) {
    it(`${alg} with qop=auth and a hand-computed response → 200`, async () => {
      const t = setup({ users });
      const ch = challengeOf(await t.send({ contacts: [contact], expires: 600 }), alg);
      const res = await t.send({ contacts: [contact], expires: 600, headers: [['Authorization', authorization({ user: 'alice', password: 'alice-secret', realm: ch.realm, nonce: ch.nonce, alg })]] });
      assert.equal(res.status, 200);
      assert.equal((await t.bindings()).length, 1);
    });
  }

  it('RFC 2069 style (no qop) answering a qop="auth" challenge → 403, nothing stored (no qop downgrade)', async () => {
    const t = setup({ users });
    for (const alg of ['SHA-256', 'MD5'] as const) {
      const ch = challengeOf(await t.send({ contacts: [contact] }), alg);
      const auth = authorization({ user: 'alice', password: 'alice-secret', realm: ch.realm, nonce: ch.nonce, alg, qop: null });
      const res = await t.send({ contacts: [contact], headers: [['Authorization', auth]] });
      assert.equal(res.status, 403, alg);
      assert.equal(res.reason, 'Digest response without qop');
    }
    assert.equal((await t.store.all()).length, 0);
  });

  it('a nonce issued by another process with the same nonceSecret (a restart, another node) → 401 stale=true, never 200', async () => {
    const first = setup({ users });
    const second = setup({ users }); // same secret, its own authenticator: another epoch
    const ch = challengeOf(await first.send({ contacts: [contact] }), 'SHA-256');
    const auth = authorization({ user: 'alice', password: 'alice-secret', realm: ch.realm, nonce: ch.nonce, alg: 'SHA-256' });
    assert.equal((await first.send({ contacts: [contact], headers: [['Authorization', auth]] })).status, 200);
    // The captured Authorization replayed on the other process: that one never saw its nonce-count.
    const replay = await second.send({ contacts: ['<sip:alice@192.0.2.66:6666>'], headers: [['Authorization', auth]] });
    assert.equal(replay.status, 401);
    const fresh = challengeOf(replay, 'SHA-256');
    assert.equal(fresh.stale, true);
    assert.notEqual(fresh.nonce, ch.nonce);
    assert.equal((await second.store.all()).length, 0);
    // RFC 7616 §3.3: stale only when the digest was valid; a wrong one stays a 403.
    const wrong = await second.send({ contacts: [contact], headers: [['Authorization', authorization({ user: 'alice', password: 'guess', realm: ch.realm, nonce: ch.nonce, alg: 'SHA-256' })]] });
    assert.equal(wrong.status, 403);
    // The honest UA retries with the fresh nonce, without asking its user.
    const retry = await second.send({ contacts: [contact], headers: [['Authorization', authorization({ user: 'alice', password: 'alice-secret', realm: fresh.realm, nonce: fresh.nonce, alg: 'SHA-256' })]] });
    assert.equal(retry.status, 200);
    // Neither process accepts the other's nonce directly either (unit level).
    const a = first.auth!;
    const b = second.auth!;
    const nonceOf = (x: DigestAuthenticator) => /nonce="([^"]+)"/.exec(x.challenges()[0])![1];
    assert.equal(nonceOf(a).split('.')[1], nonceOf(a).split('.')[1], 'one epoch per process');
    assert.notEqual(nonceOf(a).split('.')[1], nonceOf(b).split('.')[1], 'another epoch per process');
  });

  /** alice's REGISTER to `ruri`, answering its challenge with `uri` as the digest uri. */
  async function registerWithDigestUri(t: ReturnType<typeof setup>, ruri: string, uri: string) {
    const ch = challengeOf(await t.send({ ruri, contacts: [contact] }), 'SHA-256');
    return t.send({ ruri, contacts: [contact], headers: [['Authorization', authorization({ user: 'alice', password: 'alice-secret', realm: ch.realm, nonce: ch.nonce, alg: 'SHA-256', uri })]] });
  }

  it('the digest uri must designate the Request-URI: another URI → 403, nothing stored', async () => {
    const t = setup({ users });
    const cases: Array<[string, string]> = [
      ['sip:example.com', 'sip:evil.example.org'],
      ['sip:example.com', 'sips:example.com'],
      ['sip:example.com', 'sip:bob@example.com'],
      ['sip:example.com', 'sip:example.com;transport=tcp'],
      ['sip:example.com:5060', 'sip:example.com:5070'],
      ['sip:example.com', 'tel:+15551234'],
      ['sip:example.com', 'not a uri'],
    ];
    for (const [ruri, uri] of cases) {
      const res = await registerWithDigestUri(t, ruri, uri);
      assert.equal(res.status, 403, `${ruri} vs ${uri}: ${res.status} ${res.reason}`);
      assert.equal(res.reason, 'Digest uri does not match the Request-URI');
    }
    assert.equal((await t.store.all()).length, 0);
  });

  it('the digest uri is compared as a SIP URI: scheme and host case, escaping, other params, a port on one side (SIPp) → 200', async () => {
    const t = setup({ users });
    const cases: Array<[string, string]> = [
      ['sip:example.com', 'SIP:Example.COM'],
      ['sip:Example.COM', 'sip:example.com'],
      ['sip:%61lice@example.com', 'sip:alice@example.com'],
      ['sip:example.com', 'sip:example.com;foo=bar'],
      ['sip:example.com', 'sip:example.com:5060'],
      ['sip:example.com:5060', 'sip:example.com'],
    ];
    for (const [ruri, uri] of cases) {
      const res = await registerWithDigestUri(t, ruri, uri);
      assert.equal(res.status, 200, `${ruri} vs ${uri}: ${res.status} ${res.reason}`);
    }
  });

  it('nonce-count must increase: a replayed nc → 401, a higher nc → 200', async () => {
    const t = setup({ users });
    const ch = challengeOf(await t.send({ contacts: [contact] }), 'SHA-256');
    const auth = (nc: string) => [['Authorization', authorization({ user: 'alice', password: 'alice-secret', realm: ch.realm, nonce: ch.nonce, alg: 'SHA-256', nc })]] as Array<[string, string]>;
    assert.equal((await t.send({ contacts: [contact], headers: auth('00000001') })).status, 200);
    const before = await t.snapshot();
    const replay = await t.send({ contacts: ['<sip:alice@192.0.2.10:6000>'], headers: auth('00000001') });
    assert.equal(replay.status, 401);
    assert.equal(challengeOf(replay, 'SHA-256').stale, false);
    assert.equal(await t.snapshot(), before);
    assert.equal((await t.send({ contacts: [contact], headers: auth('00000002') })).status, 200);
    assert.equal((await t.send({ contacts: [contact], headers: auth('00000002') })).status, 401);
  });

  it('an expired nonce with a correct response → 401 stale=true; with a wrong password → 403', async () => {
    const t = setup({ users, config: { auth: { nonceTtlSeconds: 60 } } });
    const ch = challengeOf(await t.send({ contacts: [contact] }), 'SHA-256');
    t.clock.advance(61_000);
    const res = await t.send({ contacts: [contact], headers: [['Authorization', authorization({ user: 'alice', password: 'alice-secret', realm: ch.realm, nonce: ch.nonce, alg: 'SHA-256' })]] });
    assert.equal(res.status, 401);
    assert.equal(challengeOf(res, 'SHA-256').stale, true);
    assert.notEqual(challengeOf(res, 'SHA-256').nonce, ch.nonce);
    // RFC 7616 §3.3: stale only when the digest itself was valid.
    const wrong = await t.send({ contacts: [contact], headers: [['Authorization', authorization({ user: 'alice', password: 'guess', realm: ch.realm, nonce: ch.nonce, alg: 'SHA-256' })]] });
    assert.equal(wrong.status, 403);
    assert.equal((await t.store.all()).length, 0);
  });

  it('a nonce that is still fresh just before its TTL is accepted', async () => {
    const t = setup({ users, config: { auth: { nonceTtlSeconds: 60 } } });
    const ch = challengeOf(await t.send({ contacts: [contact] }), 'SHA-256');
    t.clock.advance(59_000);
    const res = await t.send({ contacts: [contact], headers: [['Authorization', authorization({ user: 'alice', password: 'alice-secret', realm: ch.realm, nonce: ch.nonce, alg: 'SHA-256' })]] });
    assert.equal(res.status, 200);
  });

  it('a forged nonce (bad MAC, or made-up) → 401 without stale', async () => {
    const t = setup({ users });
    const ch = challengeOf(await t.send({ contacts: [contact] }), 'SHA-256');
    const [issued, epoch, random, mac] = ch.nonce.split('.');
    const later = (parseInt(issued, 36) + 3_600_000).toString(36);
    const otherEpoch = `${epoch.slice(0, -1)}${epoch.endsWith('A') ? 'B' : 'A'}`;
    for (const nonce of [
      `${later}.${epoch}.${random}.${mac}`,
      `${issued}.${otherEpoch}.${random}.${mac}`, // a forged epoch is not "another process": not stale
      `${issued}.${epoch}.${random}.${'A'.repeat(mac.length)}`,
      `${issued}.${random}.${mac}`,
      'made-up',
    ]) {
      const res = await t.send({ contacts: [contact], headers: [['Authorization', authorization({ user: 'alice', password: 'alice-secret', realm: ch.realm, nonce, alg: 'SHA-256' })]] });
      assert.equal(res.status, 401, nonce);
      assert.equal(challengeOf(res, 'SHA-256').stale, false);
    }
  });

  it("another user's valid credentials for this AOR → 403", async () => {
    const t = setup({ users });
    const ch = challengeOf(await t.send({ contacts: [contact] }), 'SHA-256');
    const res = await t.send({ contacts: [contact], headers: [['Authorization', authorization({ user: 'carol', password: 'carol-secret', realm: ch.realm, nonce: ch.nonce, alg: 'SHA-256' })]] });
    assert.equal(res.status, 403);
    assert.equal(res.reason, 'Credentials do not match the AOR');
    assert.equal((await t.store.all()).length, 0);
  });

  it('wrong password or unknown user → 403 Invalid credentials', async () => {
    const t = setup({ users });
    const ch = challengeOf(await t.send({ contacts: [contact] }), 'SHA-256');
    for (const [user, password] of [
      ['alice', 'nope'],
      ['mallory', 'x'],
    ]) {
      const res = await t.send({ user, contacts: [contact], headers: [['Authorization', authorization({ user, password, realm: ch.realm, nonce: ch.nonce, alg: 'SHA-256' })]] });
      assert.equal(res.status, 403);
      assert.equal(res.reason, 'Invalid credentials');
    }
  });

  it('auth.failureLimit: the 10th wrong password in a minute blocks the address for 10 minutes, right password or not; challenges do not count', async () => {
    const t = setup({ users, failureLimit: true });
    const scanner: Flow = { ...FLOW, remoteAddress: '203.0.113.66', remotePort: 5070 };
    for (let i = 0; i < 30; i++) assert.equal((await t.send({ contacts: [contact] }, scanner)).status, 401, 'a challenge is no failure');
    const wrong = async () => {
      const ch = challengeOf(await t.send({ contacts: [contact] }, scanner), 'SHA-256');
      return t.send({ contacts: [contact], headers: [['Authorization', authorization({ user: 'alice', password: 'guess', realm: ch.realm, nonce: ch.nonce, alg: 'SHA-256' })]] }, scanner);
    };
    for (let i = 0; i < 10; i++) assert.equal((await wrong()).reason, 'Invalid credentials');
    const right = async (flow: Flow) => {
      const ch = challengeOf(await t.send({ contacts: [contact] }), 'SHA-256');
      return t.send({ contacts: [contact], headers: [['Authorization', authorization({ user: 'alice', password: 'alice-secret', realm: ch.realm, nonce: ch.nonce, alg: 'SHA-256' })]] }, flow);
    };
    const blocked = await right(scanner);
    assert.equal(blocked.status, 403);
    assert.equal(blocked.reason, 'Too many failed authentications');
    assert.equal((await t.send({ contacts: [contact] }, scanner)).status, 403, 'not even challenged');
    assert.equal((await t.bindings()).length, 0);
    assert.equal((await right(FLOW)).status, 200, 'another address is not affected');
    t.clock.advance(600_000);
    assert.equal((await right(scanner)).status, 200, 'the block ends');
  });

  it('auth.failureLimit: a phone with a wrong password retrying every minute is never blocked', async () => {
    const t = setup({ users, failureLimit: true });
    for (let i = 0; i < 15; i++) {
      const ch = challengeOf(await t.send({ contacts: [contact] }), 'SHA-256');
      const res = await t.send({ contacts: [contact], headers: [['Authorization', authorization({ user: 'alice', password: 'old-password', realm: ch.realm, nonce: ch.nonce, alg: 'SHA-256' })]] });
      assert.equal(res.reason, 'Invalid credentials');
      t.clock.advance(60_000);
    }
  });

  it('credentials for another realm → 401 challenge', async () => {
    const t = setup({ users });
    const ch = challengeOf(await t.send({ contacts: [contact] }), 'SHA-256');
    const res = await t.send({ contacts: [contact], headers: [['Authorization', authorization({ user: 'alice', password: 'alice-secret', realm: 'elsewhere', nonce: ch.nonce, alg: 'SHA-256' })]] });
    assert.equal(res.status, 401);
  });

  it('HA1 forms: an MD5-only user is challenged with MD5 only and authenticates with it', async () => {
    const t = setup({ users });
    const res = await t.send({ user: 'bob', contacts: ['<sip:bob@192.0.2.10:5062>'] });
    assert.equal(res.status, 401);
    assert.deepEqual(res.getAll('www-authenticate').map((c) => /algorithm=([\w-]+)/.exec(c)![1]), ['MD5']);
    const ch = challengeOf(res, 'MD5');
    const ok = await t.send({ user: 'bob', contacts: ['<sip:bob@192.0.2.10:5062>'], headers: [['Authorization', authorization({ user: 'bob', password: 'bob-secret', realm: ch.realm, nonce: ch.nonce, alg: 'MD5' })]] });
    assert.equal(ok.status, 200);
  });

  it('HA1 forms: a SHA-256-only user (ha1Sha256) authenticates with SHA-256, not MD5', async () => {
    const t = setup({ users });
    const res = await t.send({ user: 'carol', contacts: ['<sip:carol@192.0.2.10:5062>'] });
    assert.deepEqual(res.getAll('www-authenticate').map((c) => /algorithm=([\w-]+)/.exec(c)![1]), ['SHA-256']);
    const ch = challengeOf(res, 'SHA-256');
    const md5 = await t.send({ user: 'carol', contacts: ['<sip:carol@192.0.2.10:5062>'], headers: [['Authorization', authorization({ user: 'carol', password: 'carol-secret', realm: ch.realm, nonce: ch.nonce, alg: 'MD5' })]] });
    assert.equal(md5.status, 403);
    const ok = await t.send({ user: 'carol', contacts: ['<sip:carol@192.0.2.10:5062>'], headers: [['Authorization', authorization({ user: 'carol', password: 'carol-secret', realm: ch.realm, nonce: ch.nonce, alg: 'SHA-256' })]] });
    assert.equal(ok.status, 200);
  });

  it('an unknown user is challenged with every algorithm (no user enumeration)', async () => {
    const t = setup({ users });
    const res = await t.send({ user: 'nobody', contacts: ['<sip:nobody@192.0.2.10:5062>'] });
    assert.equal(res.getAll('www-authenticate').length, 2);
  });

  it('an algorithm not in auth.algorithms → 403; only the allowed ones are offered', async () => {
    const t = setup({ users, config: { auth: { algorithms: ['SHA-256'] } } });
    const first = await t.send({ contacts: [contact] });
    assert.equal(first.getAll('www-authenticate').length, 1);
    const nonce = challengeOf(first, 'SHA-256').nonce;
    const res = await t.send({ contacts: [contact], headers: [['Authorization', authorization({ user: 'alice', password: 'alice-secret', realm: DOMAIN, nonce, alg: 'MD5' })]] });
    assert.equal(res.status, 403);
  });

  it('the HA1 in the config is what a UA with the password matches (HA1 = H(user:realm:password))', async () => {
    const t = setup({ config: { auth: { realm: 'pushcall.test', users: [{ username: 'alice', ha1Sha256: H('SHA-256', 'alice:pushcall.test:s3cret') }] } } });
    const ch = challengeOf(await t.send({ contacts: [contact] }), 'SHA-256');
    assert.equal(ch.realm, 'pushcall.test');
    const res = await t.send({ contacts: [contact], headers: [['Authorization', authorization({ user: 'alice', password: 's3cret', realm: ch.realm, nonce: ch.nonce, alg: 'SHA-256' })]] });
    assert.equal(res.status, 200);
  });

  it('auth.mode open: REGISTER without credentials → 200', async () => {
    const t = setup({ config: { auth: { mode: 'open' } } });
    assert.equal((await t.send({ contacts: [contact], expires: 600 })).status, 200);
  });

  it('digest mode without an authenticator → 500, not an open registrar', async () => {
    const clock = new FakeClock();
    const registrar = new Registrar({ config: validateConfig({}), store: new MemoryBindingStore(), clock, nodeId: 'n', supportedProviders: () => [] });
    const res = await registrar.handle(request({ callId: 'a', cseq: 1, contacts: [contact] }), FLOW);
    assert.equal(res.status, 500);
  });
});

// ---------------------------------------------------------------------------------------
describe('a rejected REGISTER leaves the store byte-identical', () => {
  const c = (extra = '', port = 5062) => `<sip:alice@192.0.2.10:${port}${extra}>`;
  const cases: Array<[string, Reg, number]> = [
    ['too brief', { contacts: [c()], expires: 5 }, 423],
    ['push too brief', { contacts: [c(`;${APNS(TOKEN2)}`)], expires: 100 }, 423],
    ['unsupported provider', { contacts: [c(';pn-provider=acme;pn-prid=x;pn-param=y')] }, 555],
    ['duplicate pn-prid', { contacts: [c(`;${APNS()};pn-prid=${TOKEN2}`)] }, 400],
    ['empty pn-provider with a prid', { contacts: [c(`;pn-provider=;pn-prid=${TOKEN}`)] }, 400],
    ['bad pn-apns-env', { contacts: [c(`;${APNS(TOKEN, ';pn-apns-env=staging')}`)] }, 400],
    ['webpush with pn-param', { contacts: [c(';pn-provider=webpush;pn-prid=https%3A%2F%2Fpush.example.net%2Fs%2F1;pn-param=x')] }, 400],
    ['malformed Contact expires', { contacts: [`${c()};expires=soon`] }, 400],
    ['malformed Expires', { contacts: [c()], expires: 'tomorrow' }, 400],
    ['huge Expires', { contacts: [c()], expires: '999999999999' }, 400],
    ['malformed reg-id', { contacts: [`${c()};+sip.instance="${INSTANCE_A}";reg-id=x`] }, 400],
    ['Contact * without Expires 0', { contacts: ['*'], expires: 30 }, 400],
    ['unknown Require', { contacts: [c()], headers: [['Require', 'foo']] }, 420],
    ['too many contacts', { contacts: [c(), c('', 5070), c('', 5072), c('', 5074)] }, 403],
    ['out-of-order CSeq', { callId: 'fixed', cseq: 1, contacts: [c()], expires: 0 }, 400],
    ['foreign domain', { toHost: 'elsewhere.org', contacts: [c()] }, 404],
    ['bad second contact', { contacts: [c(';x=1'), `${c(';x=2')};q=7`] }, 400],
  ];

  it('for every kind of rejection', async () => {
    const t = setup({ config: { domains: [DOMAIN], registrar: { maxBindingsPerAor: 3 } } });
    await t.registrar.handle(request({ callId: 'fixed', cseq: 5, contacts: [c(`;${APNS()}`), c()], expires: 600 }), FLOW);
    await t.send({ user: 'bob', contacts: ['<sip:bob@192.0.2.11:5062>'], expires: 600 });
    const before = await t.snapshot();
    for (const [name, reg, status] of cases) {
      const res = reg.callId ? await t.registrar.handle(request({ cseq: 1, ...reg } as Reg & { callId: string; cseq: number }), FLOW) : await t.send(reg);
      assert.equal(res.status, status, `${name}: ${res.status} ${res.reason}`);
      assert.equal(await t.snapshot(), before, name);
    }
  });

  it('digest rejections too', async () => {
    const t = setup({ users: [{ username: 'alice', password: 'pw' }] });
    const before = await t.snapshot();
    const ch = challengeOf(await t.send({ contacts: [c()] }), 'MD5');
    await t.send({ contacts: [c()], headers: [['Authorization', authorization({ user: 'alice', password: 'wrong', realm: ch.realm, nonce: ch.nonce, alg: 'MD5' })]] });
    await t.send({ contacts: [c()], headers: [['Authorization', 'Digest username="alice"']] });
    assert.equal(await t.snapshot(), before);
  });
});

describe('per-AOR serialization', () => {
  it('concurrent REGISTERs of one AOR are applied one after the other (no lost binding)', async () => {
    const t = setup({ config: { registrar: { maxBindingsPerAor: 50 } } });
    const results = await Promise.all(Array.from({ length: 20 }, (_, i) => t.send({ contacts: [`<sip:alice@192.0.2.10:${6000 + i}>`], expires: 600 })));
    assert.ok(results.every((r) => r.status === 200));
    assert.equal((await t.bindings()).length, 20);
    const last = results.at(-1)!;
    assert.equal(last.getAll('contact').length, 20, 'the last 200 lists every binding');
  });

  it('bindings are isolated per AOR', async () => {
    const t = setup();
    await t.send({ contacts: ['<sip:alice@192.0.2.10:5062>'], expires: 600 });
    await t.send({ user: 'bob', contacts: ['<sip:bob@192.0.2.10:5062>'], expires: 600 });
    const all: Binding[] = await t.store.all();
    assert.deepEqual(all.map((b) => b.aor).sort(), ['sip:alice@example.com', 'sip:bob@example.com']);
  });
});
