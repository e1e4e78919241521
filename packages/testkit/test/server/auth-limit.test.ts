/**
 * auth.failureLimit through a running pushcall: a source that keeps sending wrong credentials
 * (a SIP scanner guessing passwords) is blocked, for REGISTER and for calls alike, while the
 * block is logged and counted; another source is not affected.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { type Lab, SipUserAgent, startLab } from '../../src/index.js';

describe('auth.failureLimit (blocking password guessers)', () => {
  let lab: Lab;
  const uas: SipUserAgent[] = [];
  before(async () => {
    lab = await startLab({
      users: [{ username: 'uma', password: 'uma-secret' }],
      config: { auth: { failureLimit: { maxFailures: 3, windowSeconds: 60, blockSeconds: 600 } } as never },
    });
  });
  after(async () => {
    for (const u of uas) await u.close();
    await lab.close();
  });

  const ua = (password: string, address: string) => {
    const u = new SipUserAgent({ user: 'uma', password, domain: '127.0.0.1', server: lab.address('udp'), instanceId: `urn:uuid:${randomUUID()}`, localAddress: address });
    uas.push(u);
    return u;
  };

  it('the third wrong password blocks the address: REGISTER and INVITE get 403, right password or not; another address registers', async () => {
    const guesser = ua('guess', '127.0.0.2');
    for (let i = 0; i < 3; i++) {
      const refused = await guesser.registerAsync(600);
      assert.equal(refused.status, 403);
      assert.equal(refused.reason, 'Invalid credentials');
    }
    const sameAddress = ua('uma-secret', '127.0.0.2');
    const blocked = await sameAddress.registerAsync(600);
    assert.equal(blocked.status, 403);
    assert.equal(blocked.reason, 'Too many failed authentications');
    const call = await sameAddress.call('sip:uma@127.0.0.1');
    assert.equal(call.status, 403, 'calls from the address too');
    assert.equal(call.reason, 'Too many failed authentications');
    assert.deepEqual(await lab.server.store.all(), []);

    const elsewhere = ua('uma-secret', '127.0.0.3');
    assert.equal((await elsewhere.registerAsync(600)).status, 200);
    const metrics = await (await fetch(`http://${lab.server.adminAddress}/metrics`)).text();
    assert.match(metrics, /^pushcall_auth_blocks_total 1$/m);
  });
});
