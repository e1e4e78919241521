/** The server advertises its Web Push VAPID key (RFC 8599 §5.4 `+sip.vapid`) over real UDP. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import webpush from 'web-push';
import { udpExchange, tempDir } from '../helpers/server.js';
import { validateConfig } from '../../src/config/load.js';
import { createPushcall } from '../../src/index.js';

test('a webpush REGISTER gets +sip.vapid with the configured public key', async () => {
  const vapid = webpush.generateVAPIDKeys();
  const config = validateConfig({
    listen: ['udp:127.0.0.1:0'],
    dataDir: tempDir(),
    admin: { enabled: false },
    log: { level: 'silent' },
    auth: { mode: 'open' },
    push: { webpush: { vapidPublicKey: vapid.publicKey, vapidPrivateKey: vapid.privateKey, subject: 'mailto:ops@example.com' } },
  });
  const server = await createPushcall({ config });
  await server.start();
  try {
    const text = [
      'REGISTER sip:127.0.0.1 SIP/2.0',
      'Via: SIP/2.0/UDP 127.0.0.1:5999;branch=z9hG4bK-vapid;rport',
      'Max-Forwards: 70',
      'From: <sip:web@127.0.0.1>;tag=w1',
      'To: <sip:web@127.0.0.1>',
      'Call-ID: vapid-1@127.0.0.1',
      'CSeq: 1 REGISTER',
      'Contact: <sip:web@127.0.0.1:5999;pn-provider=webpush;pn-prid=https%3A%2F%2Fpush.example.net%2Fs%2F1>',
      'Expires: 3600',
      'Content-Length: 0',
      '',
      '',
    ].join('\r\n');
    const reply = await udpExchange(server.port('udp'), text);
    assert.ok(reply?.startsWith('SIP/2.0 200'), reply);
    assert.match(reply ?? '', new RegExp(`Feature-Caps: \\*;\\+sip\\.pns="webpush";\\+sip\\.vapid="${vapid.publicKey}"\\r\\n`));
  } finally {
    await server.stop();
  }
});
