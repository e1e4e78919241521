import { parseMessage } from '../packages/sip/src/message/index.js';
import { readFileSync } from 'node:fs';
const src = readFileSync(new URL('./sip-message.ts', import.meta.url), 'utf8');
void src;
const SDP = ['v=0','o=alice 2890844526 2890844526 IN IP4 198.51.100.23','s=-','c=IN IP4 198.51.100.23','t=0 0','m=audio 49170 RTP/AVP 0 8 96 101','a=rtpmap:0 PCMU/8000','a=rtpmap:8 PCMA/8000','a=rtpmap:96 opus/48000/2','a=fmtp:96 useinbandfec=1;minptime=10','a=rtpmap:101 telephone-event/8000','a=fmtp:101 0-16','a=ptime:20','a=rtcp:49171 IN IP4 198.51.100.23','a=sendrecv','a=ice-ufrag:F7gI','a=ice-pwd:x9cml/YzichV2+XlhiMu8g',''].join('\r\n');
const INVITE = Buffer.from(['INVITE sip:bob@203.0.113.50:5060;transport=udp SIP/2.0','Via: SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bK-proxy-77f2a1;rport','Via: SIP/2.0/TLS 198.51.100.23:52344;received=198.51.100.23;rport=52344;branch=z9hG4bK-ua-1d2c3b','Record-Route: <sip:192.0.2.10;lr;r2=on;transport=udp>','Record-Route: <sip:proxy.pushcall.example.com;lr;r2=on;transport=tls>','Route: <sip:edge1.example.net;lr>, <sip:edge2.example.net;lr>','Max-Forwards: 69','From: "Alice" <sip:alice@pushcall.example.com>;tag=1928301774','To: <sip:bob@pushcall.example.com>','Call-ID: a84b4c76e66710@pc33.example.com','CSeq: 314159 INVITE','Contact: <sip:alice@198.51.100.23:52344;transport=tls;ob>','Allow: INVITE, ACK, CANCEL, BYE, OPTIONS','Supported: replaces, timer','User-Agent: pushcall-client/0.1.0','Content-Type: application/sdp',`Content-Length: ${Buffer.byteLength(SDP)}`,'',SDP].join('\r\n'));
const t0 = performance.now();
let n = 0;
while (performance.now() - t0 < 6000) { for (let i = 0; i < 1000; i++) parseMessage(INVITE).toBuffer(); n += 1000; }
console.log(Math.round(n / ((performance.now() - t0) / 1000)), 'msg/s');
