/**
 * Memory per binding and SQLite file size with 100,000 push bindings, registered through
 * the real registrar (RFC 8599 Contacts, +sip.instance), stored in the SQLite store.
 *   node --expose-gc --conditions=source --import tsx bench/bindings-memory.ts [count]
 */
import { mkdtempSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes, randomUUID } from 'node:crypto';
import { Registrar, SqliteBindingStore, validateConfig } from '@pushcall/server';
import { type Flow, parseMessage, type SipRequest, systemClock } from '@pushcall/sip';

const count = Number(process.argv[2] ?? 100_000);
const gc = (globalThis as { gc?: () => void }).gc;
if (!gc) throw new Error('run with node --expose-gc');
const dir = mkdtempSync(join(tmpdir(), 'bindings-mem-'));
const file = join(dir, 'bindings.sqlite');
const config = validateConfig({ dataDir: dir, auth: { mode: 'open' }, log: { level: 'silent' } });
const store = new SqliteBindingStore(file);
const registrar = new Registrar({ config, store, clock: systemClock, nodeId: 'bench', supportedProviders: () => ['apns', 'fcm'] });
const flow: Flow = { protocol: 'udp', localAddress: '127.0.0.1', localPort: 5060, remoteAddress: '127.0.0.1', remotePort: 40000 };

function request(i: number): SipRequest {
  const ios = i % 2 === 0;
  const push = ios
    ? `pn-provider=apns;pn-prid=${randomBytes(32).toString('hex')};pn-param=TEAM123456.com.example.app.voip`
    : `pn-provider=fcm;pn-prid=${randomBytes(48).toString('base64url')};pn-param=example-project`;
  const text = [
    'REGISTER sip:example.com SIP/2.0',
    `Via: SIP/2.0/UDP 127.0.0.1:40000;branch=z9hG4bK${i};rport`,
    'Max-Forwards: 70',
    `From: <sip:user${i}@example.com>;tag=${i}`,
    `To: <sip:user${i}@example.com>`,
    `Call-ID: mem-${i}`,
    'CSeq: 1 REGISTER',
    `Contact: <sip:user${i}@127.0.0.1:40000;${push}>;+sip.instance="<urn:uuid:${randomUUID()}>";reg-id=1`,
    'Expires: 3600',
    'User-Agent: pushcall-bench/1.0',
    'Content-Length: 0',
    '',
    '',
  ].join('\r\n');
  return parseMessage(Buffer.from(text)) as SipRequest;
}

gc();
const before = process.memoryUsage();
for (let i = 0; i < count; i += 1000) {
  const batch: Promise<unknown>[] = [];
  for (let j = i; j < Math.min(count, i + 1000); j++) batch.push(registrar.handle(request(j), flow));
  const statuses = (await Promise.all(batch)) as Array<{ status: number }>;
  if (statuses.some((r) => r.status !== 200)) throw new Error('a REGISTER failed');
}
gc();
gc();
const after = process.memoryUsage();
const stats = await store.stats();
const heapPer = (after.heapUsed - before.heapUsed) / count;
const rssPer = (after.rss - before.rss) / count;
await store.close();
const fileBytes = statSync(file).size;
const result = {
  bindings: stats.bindings,
  heapBytesPerBinding: Math.round(heapPer),
  rssBytesPerBinding: Math.round(rssPer),
  heapUsedMB: Math.round(after.heapUsed / 1e6),
  rssMB: Math.round(after.rss / 1e6),
  sqliteFileMB: Math.round((fileBytes / 1e6) * 10) / 10,
  sqliteBytesPerBinding: Math.round(fileBytes / count),
  node: process.version,
  command: `node --expose-gc --conditions=source --import tsx bench/bindings-memory.ts ${count}`,
};
console.log(JSON.stringify(result, null, 2));
writeFileSync(new URL('./results/bindings-memory.json', import.meta.url), `${JSON.stringify(result, null, 2)}\n`);
