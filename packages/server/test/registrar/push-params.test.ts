/**
 * RFC 8599 Contact inspection: every wire form apps send (RFC 8599, `apns.dev`,
 * `pn-apns-env`, Flexisip multi-token, legacy `pn-type`/`pn-tok`/`app-id`, X-header token)
 * normalised into one PushRegistration, and the 400/555/query/upstream decisions.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { type SipRequest, parseMessage, parseSipUriStrict } from '@pushcall/sip';
import { type PushInspectionOptions, inspectPushParams, stripAllPushParams } from '../../src/registrar/push-params.js';

const TOKEN = '00fc13adff785122b4ad28809a3420982341241421348097878e577c991de8f0';
const TOKEN2 = 'ab'.repeat(32);
const PARAM = 'ABCDE12345.com.example.app.voip';
const FCM_TOKEN = 'dGVzdA:APA91bHun4MxP5egoKMwt2KZFBaFUH-1RYqx';

const OPTIONS: PushInspectionOptions = {
  supportedProviders: ['apns', 'fcm', 'webpush', 'acme-hook'],
  apnsDefaultEnvironment: 'production',
  apnsLegacyTeamId: 'LEGACYTEAM',
};

function register(headers: Array<[string, string]> = []): SipRequest {
  const text = [
    'REGISTER sip:example.com SIP/2.0',
    'Via: SIP/2.0/UDP 192.0.2.10:5062;branch=z9hG4bK-pp',
    'Max-Forwards: 70',
    'From: <sip:alice@example.com>;tag=1',
    'To: <sip:alice@example.com>',
    'Call-ID: pp-1',
    'CSeq: 1 REGISTER',
    ...headers.map(([n, v]) => `${n}: ${v}`),
    'Content-Length: 0',
    '',
    '',
  ].join('\r\n');
  return parseMessage(Buffer.from(text)) as SipRequest;
}

function inspect(params: string, options: Partial<PushInspectionOptions> = {}, headers: Array<[string, string]> = []) {
  return inspectPushParams(parseSipUriStrict(`sip:alice@192.0.2.10:5062${params}`), register(headers), { ...OPTIONS, ...options });
}

describe('RFC 8599 form', () => {
  it('no push parameters → none', () => {
    assert.deepEqual(inspect(''), { kind: 'none' });
    assert.deepEqual(inspect(';transport=tcp;ob'), { kind: 'none' });
  });

  it('apns: production by default, param kept as TeamID.bundle.voip', () => {
    assert.deepEqual(inspect(`;pn-provider=apns;pn-prid=${TOKEN};pn-param=${PARAM}`), {
      kind: 'push',
      registration: { provider: 'apns', prid: TOKEN, param: PARAM, environment: 'production', form: 'rfc8599' },
    });
  });

  it('provider names are case-insensitive', () => {
    const r = inspect(`;pn-provider=APNS;pn-prid=${TOKEN};pn-param=${PARAM}`);
    assert.equal(r.kind, 'push');
    assert.equal(r.kind === 'push' && r.registration.provider, 'apns');
  });

  it('apnsDefaultEnvironment applies when the client does not say', () => {
    const r = inspect(`;pn-provider=apns;pn-prid=${TOKEN};pn-param=${PARAM}`, { apnsDefaultEnvironment: 'sandbox' });
    assert.equal(r.kind === 'push' && r.registration.environment, 'sandbox');
  });

  for (const [form, params, env] of [
    ['pn-provider=apns.dev', `;pn-provider=apns.dev;pn-prid=${TOKEN};pn-param=${PARAM}`, 'sandbox'],
    ['pn-provider=apns.sandbox', `;pn-provider=apns.sandbox;pn-prid=${TOKEN};pn-param=${PARAM}`, 'sandbox'],
    ['pn-apns-env=sandbox', `;pn-provider=apns;pn-prid=${TOKEN};pn-param=${PARAM};pn-apns-env=sandbox`, 'sandbox'],
    ['pn-apns-env=development', `;pn-provider=apns;pn-prid=${TOKEN};pn-param=${PARAM};pn-apns-env=development`, 'sandbox'],
    ['pn-apns-env=production overrides apns.dev', `;pn-provider=apns.dev;pn-prid=${TOKEN};pn-param=${PARAM};pn-apns-env=production`, 'production'],
  ] as const) {
    it(`${form} → ${env}, provider apns`, () => {
      const r = inspect(params, { apnsDefaultEnvironment: env === 'production' ? 'sandbox' : 'production' });
      assert.equal(r.kind, 'push');
      if (r.kind !== 'push') return;
      assert.equal(r.registration.provider, 'apns');
      assert.equal(r.registration.environment, env);
    });
  }

  it('an unknown pn-apns-env value is malformed', () => {
    assert.deepEqual(inspect(`;pn-provider=apns;pn-prid=${TOKEN};pn-param=${PARAM};pn-apns-env=staging`), { kind: 'malformed', reason: 'pn-apns-env must be production or sandbox' });
  });

  it('fcm: token and project id; no environment', () => {
    assert.deepEqual(inspect(`;pn-provider=fcm;pn-prid=${FCM_TOKEN};pn-param=my-project`), {
      kind: 'push',
      registration: { provider: 'fcm', prid: FCM_TOKEN, param: 'my-project', environment: undefined, form: 'rfc8599' },
    });
    assert.equal(inspect(';pn-provider=fcm;pn-prid=short').kind, 'malformed');
  });

  it('webpush: the escaped subscription URI is unescaped (§8.7); pn-param is forbidden (§12)', () => {
    const r = inspect(';pn-provider=webpush;pn-prid=https%3A%2F%2Fpush.example.net%2Fpush%2FJzLQ3raZJfFBR0aqvOMsLrt54w4rJUsV');
    assert.deepEqual(r, { kind: 'push', registration: { provider: 'webpush', prid: 'https://push.example.net/push/JzLQ3raZJfFBR0aqvOMsLrt54w4rJUsV', param: undefined, environment: undefined, form: 'rfc8599' } });
    assert.equal(inspect(';pn-provider=webpush;pn-prid=https%3A%2F%2Fpush.example.net%2Fx;pn-param=p').kind, 'malformed');
    assert.equal(inspect(';pn-provider=webpush;pn-prid=http%3A%2F%2Fpush.example.net%2Fx').kind, 'malformed');
  });

  it('a custom (webhook) provider accepts any PRID up to 4096 characters', () => {
    assert.equal(inspect(';pn-provider=acme-hook;pn-prid=anything-goes').kind, 'push');
    assert.equal(inspect(`;pn-provider=acme-hook;pn-prid=${'x'.repeat(4097)}`).kind, 'malformed');
  });

  it('apns: non-hex token or bad pn-param → malformed; missing pn-param → unsupported (555 material)', () => {
    assert.deepEqual(inspect(`;pn-provider=apns;pn-prid=not-hex;pn-param=${PARAM}`), { kind: 'malformed', reason: 'Malformed pn-prid: APNs device tokens are hex' });
    assert.equal(inspect(`;pn-provider=apns;pn-prid=${TOKEN};pn-param=nodot`).kind, 'malformed');
    assert.equal(inspect(`;pn-provider=apns;pn-prid=${TOKEN};pn-param=.leadingdot`).kind, 'malformed');
    assert.equal(inspect(`;pn-provider=apns;pn-prid=${TOKEN}`).kind, 'unsupported');
  });

  it('unsupported provider → unsupported with its name', () => {
    assert.deepEqual(inspect(';pn-provider=acme;pn-prid=abc;pn-param=x'), { kind: 'unsupported', provider: 'acme', reason: 'Push provider "acme" is not supported' });
    assert.equal(inspect(`;pn-provider=apns;pn-prid=${TOKEN};pn-param=${PARAM}`, { supportedProviders: ['fcm'] }).kind, 'unsupported');
  });

  it('duplicate push parameters are malformed', () => {
    for (const name of ['pn-provider', 'pn-prid', 'pn-param', 'pn-apns-env', 'pn-tok', 'app-id']) {
      const r = inspect(`;pn-provider=apns;pn-prid=${TOKEN};pn-param=${PARAM};${name}=a;${name}=b`);
      assert.deepEqual(r, { kind: 'malformed', reason: `Duplicate ${name} parameter` }, name);
    }
  });

  it('a pn-prid with an empty pn-provider is malformed', () => {
    assert.equal(inspect(`;pn-provider=;pn-prid=${TOKEN}`).kind, 'malformed');
    assert.equal(inspect(`;pn-provider;pn-prid=${TOKEN}`).kind, 'malformed');
  });
});

describe('capability query (§4.1.5, §5.6.1.2)', () => {
  it('pn-provider without a value (or empty) → query for every provider', () => {
    assert.deepEqual(inspect(';pn-provider'), { kind: 'query', provider: '' });
    assert.deepEqual(inspect(';pn-provider='), { kind: 'query', provider: '' });
  });

  it('pn-provider=X without pn-prid → query for X (apns.dev normalised to apns), supported or not', () => {
    assert.deepEqual(inspect(';pn-provider=fcm'), { kind: 'query', provider: 'fcm' });
    assert.deepEqual(inspect(`;pn-provider=apns.dev;pn-param=${PARAM}`), { kind: 'query', provider: 'apns' });
    assert.deepEqual(inspect(';pn-provider=acme'), { kind: 'query', provider: 'acme' });
    assert.deepEqual(inspect(';pn-provider=fcm;pn-prid='), { kind: 'query', provider: 'fcm' });
  });

  it('legacy pn-type without pn-tok is a query', () => {
    assert.equal(inspect(';pn-type=apple;app-id=com.example.app').kind, 'query');
  });
});

describe('+sip.pns already in the REGISTER (§5.6.1.1 step 1)', () => {
  it('→ handled-upstream, whatever the Contact holds', () => {
    const fc: Array<[string, string]> = [['Feature-Caps', '*;+sip.pns="apns"']];
    assert.deepEqual(inspect(`;pn-provider=apns;pn-prid=${TOKEN};pn-param=${PARAM}`, {}, fc), { kind: 'handled-upstream' });
    assert.deepEqual(inspect(';pn-provider=acme;pn-prid=x', {}, fc), { kind: 'handled-upstream' });
  });

  it('a Feature-Caps without +sip.pns does not count', () => {
    assert.equal(inspect(`;pn-provider=apns;pn-prid=${TOKEN};pn-param=${PARAM}`, {}, [['Feature-Caps', '*;+sip.other="1"']]).kind, 'push');
  });
});

describe('legacy pn-type / pn-tok / app-id', () => {
  for (const [appId, bundle, env] of [
    ['com.example.app.dev', 'com.example.app.voip', 'sandbox'],
    ['com.example.app.prod', 'com.example.app.voip', 'production'],
    ['com.example.app.voip.dev', 'com.example.app.voip', 'sandbox'],
    ['com.example.app', 'com.example.app.voip', 'production'],
  ] as const) {
    it(`app-id=${appId} → ${env}, LEGACYTEAM.${bundle}`, () => {
      const r = inspect(`;pn-type=apple;pn-tok=${TOKEN};app-id=${appId}`);
      assert.deepEqual(r, { kind: 'push', registration: { provider: 'apns', prid: TOKEN, param: `LEGACYTEAM.${bundle}`, environment: env, form: 'legacy' } });
    });
  }

  it('app-id without suffix uses apnsDefaultEnvironment; the team id comes from apnsLegacyTeamId', () => {
    const r = inspect(`;pn-type=apple;pn-tok=${TOKEN};app-id=com.example.app`, { apnsDefaultEnvironment: 'sandbox', apnsLegacyTeamId: 'T1' });
    assert.equal(r.kind === 'push' && r.registration.environment, 'sandbox');
    assert.equal(r.kind === 'push' && r.registration.param, 'T1.com.example.app.voip');
  });

  it('pn-type=firebase/google/fcm → fcm', () => {
    for (const type of ['firebase', 'google', 'fcm']) {
      const r = inspect(`;pn-type=${type};pn-tok=${FCM_TOKEN};app-id=com.example.app`);
      assert.deepEqual(r, { kind: 'push', registration: { provider: 'fcm', prid: FCM_TOKEN, param: 'com.example.app', form: 'legacy' } }, type);
    }
  });

  it('legacy apple without app-id → unsupported; unknown pn-type → unsupported', () => {
    assert.equal(inspect(`;pn-type=apple;pn-tok=${TOKEN}`).kind, 'unsupported');
    assert.deepEqual(inspect(';pn-type=blackberry;pn-tok=xyz').kind, 'unsupported');
  });

  it('the RFC 8599 form wins when both are present', () => {
    const r = inspect(`;pn-provider=apns;pn-prid=${TOKEN};pn-param=${PARAM};pn-type=firebase;pn-tok=${FCM_TOKEN}`);
    assert.equal(r.kind === 'push' && r.registration.form, 'rfc8599');
  });
});

describe('Flexisip multi-token form', () => {
  it('voip&remote: voip token is the PRID, remote is the alert token, param normalised', () => {
    const r = inspect(`;pn-provider=apns;pn-param=ABCDE12345.com.example.app.voip&remote;pn-prid=${TOKEN}:voip&${TOKEN2}:remote`);
    assert.deepEqual(r, { kind: 'push', registration: { provider: 'apns', prid: TOKEN, param: 'ABCDE12345.com.example.app.voip', environment: 'production', alertPrid: TOKEN2, form: 'flexisip-multi' } });
  });

  it('the order of pairs does not matter; apns.dev still means sandbox', () => {
    const r = inspect(`;pn-provider=apns.dev;pn-param=ABCDE12345.com.example.app.remote&voip;pn-prid=${TOKEN2}:remote&${TOKEN}:voip`);
    assert.equal(r.kind, 'push');
    if (r.kind !== 'push') return;
    assert.equal(r.registration.prid, TOKEN);
    assert.equal(r.registration.alertPrid, TOKEN2);
    assert.equal(r.registration.environment, 'sandbox');
  });

  it('services/tokens count mismatch → malformed with both counts', () => {
    assert.deepEqual(inspect(`;pn-provider=apns;pn-param=${PARAM};pn-prid=${TOKEN}:voip&${TOKEN2}:remote`), {
      kind: 'malformed',
      reason: 'pn-param declares 1 service(s) but pn-prid has 2 token(s)',
    });
    assert.deepEqual(inspect(`;pn-provider=apns;pn-param=ABCDE12345.com.example.app.voip&remote;pn-prid=${TOKEN}:voip`), {
      kind: 'malformed',
      reason: 'pn-param declares 2 service(s) but pn-prid has 1 token(s)',
    });
  });

  it('a single token:service pair (Linphone sends ":voip" even with one token) is accepted', () => {
    const r = inspect(`;pn-provider=apns;pn-param=${PARAM};pn-prid=${TOKEN}:voip`);
    assert.deepEqual(r, { kind: 'push', registration: { provider: 'apns', prid: TOKEN, param: PARAM, environment: 'production', alertPrid: undefined, form: 'flexisip-multi' } });
  });

  it('no voip token → unsupported; pairs without a service → malformed; non-hex voip token → malformed', () => {
    assert.equal(inspect(`;pn-provider=apns;pn-param=ABCDE12345.com.example.app.remote;pn-prid=${TOKEN}:remote`).kind, 'unsupported');
    assert.equal(inspect(`;pn-provider=apns;pn-param=ABCDE12345.com.example.app.voip&remote;pn-prid=${TOKEN}&${TOKEN2}`).kind, 'malformed');
    assert.equal(inspect(`;pn-provider=apns;pn-param=ABCDE12345.com.example.app.voip&remote;pn-prid=zz:voip&${TOKEN2}:remote`).kind, 'malformed');
    assert.equal(inspect(`;pn-provider=apns;pn-param=nodots&x;pn-prid=${TOKEN}:voip&${TOKEN2}:remote`).kind, 'malformed');
  });
});

describe('token in a header (registrar.tokenHeader, Siprix X-Token)', () => {
  const tokenHeader = { name: 'X-Token', provider: 'apns', param: PARAM };

  it('reads the header; provider/param/environment from configuration', () => {
    assert.deepEqual(inspect('', { tokenHeader }, [['X-Token', TOKEN]]), {
      kind: 'push',
      registration: { provider: 'apns', prid: TOKEN, param: PARAM, environment: 'production', form: 'header' },
    });
    const sandbox = inspect('', { tokenHeader: { ...tokenHeader, environment: 'sandbox' } }, [['X-Token', `  ${TOKEN}  `]]);
    assert.equal(sandbox.kind === 'push' && sandbox.registration.environment, 'sandbox');
    assert.equal(sandbox.kind === 'push' && sandbox.registration.prid, TOKEN, 'trimmed');
  });

  it('also reads a Contact URI parameter of that name', () => {
    assert.equal(inspect(`;X-Token=${TOKEN}`, { tokenHeader }).kind, 'push');
  });

  it('without the header (or without configuration) → none; RFC 8599 params take precedence', () => {
    assert.deepEqual(inspect('', { tokenHeader }), { kind: 'none' });
    assert.deepEqual(inspect('', {}, [['X-Token', TOKEN]]), { kind: 'none' });
    const r = inspect(`;pn-provider=fcm;pn-prid=${FCM_TOKEN}`, { tokenHeader }, [['X-Token', TOKEN]]);
    assert.equal(r.kind === 'push' && r.registration.provider, 'fcm');
  });

  it('the header token is validated like any other (hex for APNs; provider must be supported)', () => {
    assert.equal(inspect('', { tokenHeader }, [['X-Token', 'not hex']]).kind, 'malformed');
    assert.equal(inspect('', { tokenHeader, supportedProviders: ['fcm'] }, [['X-Token', TOKEN]]).kind, 'unsupported');
  });
});

describe('stripAllPushParams', () => {
  it('removes every pn-* and app-id, keeps the rest', () => {
    const uri = parseSipUriStrict(`sip:alice@192.0.2.10:5062;transport=tcp;pn-provider=apns;pn-prid=${TOKEN};pn-param=${PARAM};pn-type=apple;app-id=x;ob`);
    assert.equal(stripAllPushParams(uri).toString(), 'sip:alice@192.0.2.10:5062;transport=tcp;ob');
    assert.ok(uri.params.has('pn-prid'), 'the original is untouched');
  });
});
