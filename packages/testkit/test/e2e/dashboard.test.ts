/**
 * The admin dashboard in a real browser (Debian's Chromium, driven by playwright-core): a
 * sleeping iPhone is woken by a call, and the page shows the binding, the call with its
 * push and wake time, and the call's timeline; it loads nothing from elsewhere and logs no
 * error (its Content-Security-Policy allows 'self' only).
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { type Browser, chromium } from 'playwright-core';
import { type Lab, SimulatedPhone, freePort, startLab, startRedisServer } from '../../src/index.js';
import { callerUa, waitFor } from '../proxy/helpers.js';

const CHROMIUM = '/usr/bin/chromium';

describe('admin dashboard (Chromium)', () => {
  let lab: Lab;
  let browser: Browser;
  let phone: SimulatedPhone;
  before(async () => {
    lab = await startLab();
    // Root on CI: Chromium's sandbox needs a user namespace it may not have.
    browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox', '--disable-gpu'] });
    phone = new SimulatedPhone({ name: 'dash-iphone', platform: 'ios', user: 'dana', ...lab.phoneWiring(), launchDelayMs: 100, answer: { kind: 'answer', afterMs: 100 } });
    await phone.start();
    await phone.sleep();
  });
  after(async () => {
    await browser?.close();
    await phone?.close();
    await lab?.close();
  });

  it('shows the binding, the woken call with its push and wake time, and its timeline', async () => {
    const caller = callerUa(lab, 'carol');
    try {
      const response = await caller.call('sip:dana@127.0.0.1');
      assert.equal(response.status, 200);
      caller.hangup(response.callId);
    } finally {
      await caller.close();
    }
    await waitFor(() => lab.server.timelines.list(10).some((c) => c.endedAt !== undefined), 5000, 'the call to end');

    const page = await browser.newPage();
    const problems: string[] = [];
    page.on('console', (m) => {
      if (m.type() === 'error' || m.type() === 'warning') problems.push(m.text());
    });
    page.on('pageerror', (e) => problems.push(e.message));
    const requested: string[] = [];
    page.on('request', (r) => requested.push(r.url()));
    const base = `http://${lab.server.adminAddress}`;
    const res = await page.goto(`${base}/`);
    assert.equal(res?.status(), 200);
    assert.match(res?.headers()['content-security-policy'] ?? '', /default-src 'self'/);

    const row = page.locator('#calls tbody tr').first();
    await row.waitFor({ timeout: 5000 });
    assert.equal(await page.locator('#bindings').textContent(), '1');
    assert.match((await page.locator('#providers').textContent()) ?? '', /apns: 1/);
    const cells = await row.locator('td').allTextContents();
    assert.equal(cells[1], 'INVITE');
    assert.equal(cells[2], 'sip:carol@127.0.0.1');
    assert.equal(cells[3], 'sip:dana@127.0.0.1');
    assert.equal(cells[4], 'apns ok');
    assert.match(cells[5], /^\d+\.\d ms$/, 'the wake time of the woken call');
    assert.equal(cells[6], 'answered (200)');
    assert.match((await page.locator('#wake').textContent()) ?? '', /^p50 \d+ ms$/);
    assert.match((await page.locator('#outcomes').textContent()) ?? '', /answered: 1/);
    assert.equal(await page.locator('#offline').textContent(), '0', 'offline messages kept');

    await row.click();
    const kinds = await page.locator('#timeline tbody tr td:nth-child(2)').allTextContents();
    for (const kind of ['invite-in', 'push-sent', 'push-accepted', 'device-registered', 'request-out', 'ended']) {
      assert.ok(kinds.includes(kind), `timeline has ${kind}: ${kinds.join(', ')}`);
    }
    assert.deepEqual(problems, []);
    assert.ok(requested.every((u) => u.startsWith(base)), `only same-origin requests: ${requested.filter((u) => !u.startsWith(base)).join(', ')}`);
    await page.close();
  });

  it('says so when pushcall stops answering', async () => {
    const page = await browser.newPage();
    await page.goto(`http://${lab.server.adminAddress}/`);
    await page.locator('#calls tbody tr').first().waitFor({ timeout: 5000 });
    await page.route('**/api/**', (route) => route.fulfill({ status: 503, body: '{}' }));
    await page.locator('#status.error').waitFor({ timeout: 5000 });
    assert.match((await page.locator('#status').textContent()) ?? '', /^cannot reach pushcall: \/api\/summary: HTTP 503/);
    await page.close();
  });

  it('with admin.token: the page shows the data when its URL carries the token, and says it is refused without', async () => {
    const token = 'dashb0ard-t0ken-for-tests-01234';
    const secured = await startLab({ config: { admin: { token } as never } });
    try {
      const page = await browser.newPage();
      const problems: string[] = [];
      page.on('pageerror', (e) => problems.push(e.message));
      await page.goto(`http://${secured.server.adminAddress}/#token=${token}`);
      await page.locator('#bindings').filter({ hasText: '0' }).waitFor({ timeout: 5000 });
      assert.match((await page.locator('#status').textContent()) ?? '', /^updated /);
      await page.goto(`http://${secured.server.adminAddress}/`);
      await page.reload();
      await page.locator('#status.error').waitFor({ timeout: 5000 });
      assert.match((await page.locator('#status').textContent()) ?? '', /HTTP 401/);
      assert.deepEqual(problems, []);
      await page.close();
    } finally {
      await secured.close();
    }
  });

  it('multi-node: the header lists the live nodes sharing the Redis store', async () => {
    const redis = await startRedisServer();
    const port = await freePort();
    const clustered = await startLab({
      listen: [`udp:127.0.0.1:${port}`],
      config: { node: { id: 'dash-a', uri: `sip:127.0.0.1:${port}` }, store: { type: 'redis', redis: { url: redis.url, keyPrefix: 'dash:' } } as never, auth: { nonceSecret: 'dashboard-cluster-shared-secret' } as never },
    });
    try {
      const page = await browser.newPage();
      await page.goto(`http://${clustered.server.adminAddress}/`);
      await page.locator('#node').filter({ hasText: 'cluster dash-a' }).waitFor({ timeout: 5000 });
      assert.match((await page.locator('#node').textContent()) ?? '', /^node dash-a · up \d+ s · cluster dash-a$/);
      await page.close();
    } finally {
      await clustered.close();
      await redis.stop();
    }
  });
});
