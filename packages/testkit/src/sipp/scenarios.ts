/** Inline SIPp scenarios used by the tests (SIPp's digest support is MD5 only). */

const XML_HEAD = '<?xml version="1.0" encoding="ISO-8859-1" ?>\n';

export interface RegisterScenario {
  user: string;
  domain?: string;
  /** Contact header value; `[local_ip]`/`[local_port]` are SIPp keywords. */
  contact: string;
  expires?: number | string;
  /** Answer a 401 with these credentials. */
  password?: string;
  /** The final status expected. */
  expect: number;
  /** Regular expressions the final response must match (checked by SIPp). */
  expectHeaders?: string[];
  extraHeaders?: string[];
  callId?: string;
  cseq?: number;
}

function escapeXmlAttr(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/"/g, '&quot;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

function registerMessage(s: RegisterScenario, cseq: number, withAuth: boolean): string {
  const domain = s.domain ?? '127.0.0.1';
  const lines = [
    `REGISTER sip:${domain} SIP/2.0`,
    'Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]',
    'Max-Forwards: 70',
    `From: <sip:${s.user}@${domain}>;tag=[pid]t[call_number]`,
    `To: <sip:${s.user}@${domain}>`,
    `Call-ID: ${s.callId ?? '[call_id]'}`,
    `CSeq: ${cseq} REGISTER`,
    `Contact: ${s.contact}`,
  ];
  if (withAuth) lines.push(`[authentication username=${s.user} password=${s.password}]`);
  if (s.expires !== undefined) lines.push(`Expires: ${s.expires}`);
  if (s.extraHeaders) lines.push(...s.extraHeaders);
  lines.push('Content-Length: 0', '', '');
  return `<send retrans="500"><![CDATA[\n${lines.join('\n')}]]></send>\n`;
}

export function registerScenario(s: RegisterScenario): string {
  const cseq = s.cseq ?? 1;
  let xml = `${XML_HEAD}<scenario name="register">\n`;
  if (s.password) {
    xml += registerMessage(s, cseq, false);
    xml += '<recv response="401" auth="true"/>\n';
    xml += registerMessage(s, cseq + 1, true);
  } else xml += registerMessage(s, cseq, false);
  const checks = (s.expectHeaders ?? []).map(
    (re, i) => `<ereg regexp="${escapeXmlAttr(re)}" search_in="msg" check_it="true" assign_to="h${i}"/>`,
  );
  xml += `<recv response="${s.expect}">${checks.length ? `<action>${checks.join('')}</action>` : ''}</recv>\n`;
  if (checks.length) xml += `<Reference variables="${checks.map((_, i) => `h${i}`).join(',')}"/>\n`;
  return `${xml}</scenario>\n`;
}
