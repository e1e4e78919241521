/**
 * Configuration: validation errors name the path of every problem, defaults are the ones
 * docs/configuration.md documents, the embedded defaults carry the demo users, and flags
 * override the file.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { after, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { DEMO_USERS, loadConfig, readConfigFile, validateConfig } from '../../src/config/load.js';
import { ConfigError, isPushcallError } from '../../src/errors.js';
import { parsePushConfig } from '../../src/push/config.js';

const dir = mkdtempSync(join(tmpdir(), 'pushcall-config-'));
after(() => rmSync(dir, { recursive: true, force: true }));
let n = 0;
function file(text: string): string {
  const path = join(dir, `config-${++n}.yaml`);
  writeFileSync(path, text);
  return path;
}

/** The ConfigError thrown by `fn`, with its issues. */
function configError(fn: () => unknown): ConfigError {
  try {
    fn();
  } catch (error) {
    assert.ok(error instanceof ConfigError, `ConfigError expected, got ${String(error)}`);
    assert.ok(isPushcallError(error));
    assert.equal(error.code, 'PUSHCALL_ERR_CONFIG');
    return error;
  }
  assert.fail('expected a ConfigError');
}

describe('validateConfig: errors with paths', () => {
  const cases: Array<[string, unknown, string]> = [
    ['bad listen protocol', { listen: ['http:127.0.0.1:80'] }, 'listen.0: expected <udp|tcp|tls|ws|wss>:<host>:<port>'],
    ['listen without port', { listen: ['udp:127.0.0.1'] }, 'listen.0: expected <udp|tcp|tls|ws|wss>:<host>:<port>'],
    ['listen port above 65535', { listen: ['udp:127.0.0.1:5060', 'tcp:127.0.0.1:99999'] }, 'listen.1: port must be 0-65535'],
    ['listen as a string', { listen: 'udp:127.0.0.1:5060' }, 'listen: Invalid input: expected array, received string'],
    ['empty listen list', { listen: [] }, 'listen: Too small'],
    ['admin.listen without port', { admin: { listen: 'localhost' } }, 'admin.listen: expected <host>:<port>'],
    ['admin.listen port above 65535', { admin: { listen: '127.0.0.1:70000' } }, 'admin.listen: port must be 0-65535'],
    ['admin.eventLoopSampleMs of 0', { admin: { eventLoopSampleMs: 0 } }, 'admin.eventLoopSampleMs: Too small'],
    ['unknown top-level key', { registar: {} }, '(root): Unrecognized key: "registar"'],
    ['unknown nested key', { registrar: { minExpire: 60 } }, 'registrar: Unrecognized key: "minExpire"'],
    ['wrong type', { registrar: { minExpires: 'sixty' } }, 'registrar.minExpires: Invalid input: expected number, received string'],
    ['negative number', { registrar: { defaultExpires: -1 } }, 'registrar.defaultExpires: Too small'],
    ['non-integer', { registrar: { maxBindingsPerAor: 2.5 } }, 'registrar.maxBindingsPerAor: Invalid input: expected int'],
    ['pnsreg not above 120 (RFC 8599 §5.6.1.1)', { registrar: { pnsregSeconds: 120 } }, 'registrar.pnsregSeconds: Too small: expected number to be >=121'],
    ['bad enum', { registrar: { apnsDefaultEnvironment: 'dev' } }, 'registrar.apnsDefaultEnvironment: Invalid option'],
    ['minExpires above maxExpires', { registrar: { minExpires: 7200, maxExpires: 3600 } }, 'registrar.minExpires: minExpires must not exceed maxExpires'],
    ['minPushExpires above maxExpires', { registrar: { maxExpires: 120 } }, 'registrar.minPushExpires: minPushExpires must not exceed maxExpires'],
    ['Flow-Timer not below the live window', { registrar: { flowTimerSeconds: 120 } }, 'registrar.flowTimerSeconds: registrar.flowTimerSeconds must be below proxy.liveFlowSeconds'],
    ['tokenHeader without provider', { registrar: { tokenHeader: { name: 'X-Token' } } }, 'registrar.tokenHeader.provider'],
    ['user without password or ha1', { auth: { users: [{ username: 'alice' }] } }, 'auth.users.0: a user needs password, ha1 or ha1Sha256'],
    ['user with an empty name', { auth: { users: [{ username: '', password: 'x' }] } }, 'auth.users.0.username: Too small'],
    ['ha1 not 32 hex digits', { auth: { users: [{ username: 'alice', ha1: 'abc' }] } }, 'auth.users.0.ha1: Invalid string'],
    ['ha1Sha256 not 64 hex digits', { auth: { users: [{ username: 'alice', ha1Sha256: 'f'.repeat(32) }] } }, 'auth.users.0.ha1Sha256: Invalid string'],
    ['unknown user field', { auth: { users: [{ username: 'alice', password: 'x', pass: 'y' }] } }, 'auth.users.0: Unrecognized key: "pass"'],
    ['duplicate username', { auth: { users: [{ username: 'alice', password: 'x' }, { username: 'alice', password: 'y' }] } }, 'auth.users.1.username: duplicate username "alice"'],
    ['unknown auth mode', { auth: { mode: 'none' } }, 'auth.mode: Invalid option'],
    ['negative failure limit', { auth: { failureLimit: { maxFailures: -1 } } }, 'auth.failureLimit.maxFailures: Too small'],
    ['unknown algorithm', { auth: { algorithms: ['SHA-512'] } }, 'auth.algorithms.0: Invalid option'],
    ['no algorithm', { auth: { algorithms: [] } }, 'auth.algorithms: Too small'],
    ['trusted peer that is not an address', { auth: { trustedPeers: ['10.0.0.0/8', 'pbx.example.com'] } }, 'auth.trustedPeers.1: expected an IPv4/IPv6 address or CIDR prefix'],
    ['trusted peer with a bad prefix', { auth: { trustedPeers: ['10.0.0.0/33'] } }, 'auth.trustedPeers.0: expected an IPv4/IPv6 address or CIDR prefix'],
    ['proxy.upstream not a SIP URI', { proxy: { upstream: 'pbx.example.com:5060' } }, 'proxy.upstream: expected a SIP or SIPS URI'],
    ['unknown store type', { store: { type: 'postgres' } }, 'store.type: Invalid option'],
    ['redis store without node.uri', { store: { type: 'redis' } }, 'node.uri: node.uri is required with store.type redis'],
    ['redis URL of another scheme', { store: { type: 'redis', redis: { url: 'http://127.0.0.1:6379' } }, node: { uri: 'sip:127.0.0.1:5070' } }, 'store.redis.url: a redis:// or rediss:// URL'],
    [
      'Sentinel addresses without the master name',
      { store: { type: 'redis', redis: { sentinels: ['10.0.0.5:26379'] } }, node: { uri: 'sip:127.0.0.1:5070' }, auth: { nonceSecret: 'shared-between-the-nodes' } },
      'store.redis.masterName: store.redis.sentinels and store.redis.masterName go together',
    ],
    ['a Sentinel address without a port', { store: { type: 'redis', redis: { sentinels: ['10.0.0.5'], masterName: 'pc' } } }, 'store.redis.sentinels.0: expected host:port'],
    ['redis store without a shared secret', { store: { type: 'redis' }, node: { uri: 'sip:127.0.0.1:5070' } }, 'auth.nonceSecret: auth.nonceSecret (at least 16 characters, the same on every node)'],
    ['node.uri not a SIP URI', { node: { uri: '10.0.0.2:5060' } }, 'node.uri: expected a SIP URI'],
    ['node.id with a space', { node: { id: 'node 1' } }, 'node.id: letters, digits'],
    ['bad log level', { log: { level: 'verbose' } }, 'log.level: Invalid option'],
    ['top level not an object', ['a'], '(root): Invalid input: expected object, received array'],
  ];
  for (const [name, input, issue] of cases) {
    it(name, () => {
      const error = configError(() => validateConfig(input));
      assert.ok(
        error.issues.some((i) => i.startsWith(issue)),
        `an issue starting with ${JSON.stringify(issue)} in ${JSON.stringify(error.issues)}`,
      );
      assert.match(error.message, /^Invalid configuration:\n {2}- /);
      for (const i of error.issues) assert.ok(error.message.includes(i), 'every issue is in the message');
    });
  }

  it('reports every problem at once', () => {
    const error = configError(() => validateConfig({ listen: ['x'], registrar: { minExpires: 'a' }, auth: { users: [{ username: 'u' }] }, nope: 1 }));
    assert.equal(error.issues.length, 4, JSON.stringify(error.issues));
  });

  it('accepts IPv6 and hostname listeners, port 0 (ephemeral), HA1-only users, address/CIDR trusted peers', () => {
    const config = validateConfig({
      listen: ['udp:[::1]:5060', 'tcp:sip.example.com:5060', 'wss:0.0.0.0:0'],
      auth: {
        users: [{ username: 'a', ha1: 'A'.repeat(32) }, { username: 'b', ha1Sha256: 'b'.repeat(64) }],
        trustedPeers: ['192.0.2.1', '10.0.0.0/8', '::1', '2001:db8::/32'],
      },
    });
    assert.equal(config.listen.length, 3);
    assert.equal(config.auth.users.length, 2);
    assert.equal(config.auth.trustedPeers.length, 4);
    assert.equal(validateConfig({ proxy: { upstream: 'sip:pbx.example.com:5060;transport=tcp' } }).proxy.upstream, 'sip:pbx.example.com:5060;transport=tcp');
  });

  it('null / undefined is the empty config', () => {
    assert.deepEqual(validateConfig(null), validateConfig({}));
    assert.deepEqual(validateConfig(undefined), validateConfig({}));
  });
});

describe('defaults (as documented in docs/configuration.md)', () => {
  const config = validateConfig({});

  it('loopback listeners, ./data, SQLite, admin on 127.0.0.1:9060', () => {
    assert.deepEqual(config.listen, ['udp:127.0.0.1:5060', 'tcp:127.0.0.1:5060', 'ws:127.0.0.1:5066']);
    assert.equal(config.node.id, 'node-1');
    assert.deepEqual(config.domains, []);
    assert.equal(config.dataDir, './data');
    assert.deepEqual(config.store, {
      type: 'sqlite',
      redis: { url: 'redis://127.0.0.1:6379', keyPrefix: 'pushcall:', commandTimeoutMs: 2000 },
      sweepIntervalSeconds: 30,
      commitDelayMs: 2,
      checkpointIntervalMs: 1000,
    });
    assert.deepEqual(config.admin, { listen: '127.0.0.1:9060', enabled: true, eventLoopSampleMs: 50 });
    assert.deepEqual(config.log, { level: 'info' });
    assert.equal(config.tls, undefined);
    assert.equal(config.advertisedHost, undefined);
  });

  it('registrar', () => {
    assert.deepEqual(config.registrar, {
      defaultExpires: 3600,
      minExpires: 60,
      minPushExpires: 180,
      maxExpires: 604800,
      maxBindingsPerAor: 10,
      pnsregSeconds: 130,
      lastHop: true,
      apnsLegacyTeamId: 'LEGACYTEAM',
      apnsDefaultEnvironment: 'production',
      purr: { enabled: false, rotateSeconds: 86400, keep: 4 },
      regEvent: { enabled: true, maxExpires: 3600, minExpires: 60, maxPerUser: 10, maxTotal: 10000 },
    });
  });

  it('auth: digest with SHA-256 then MD5, no users, 300 s nonces', () => {
    assert.deepEqual(config.auth, {
      mode: 'digest',
      nonceTtlSeconds: 300,
      algorithms: ['SHA-256', 'MD5'],
      users: [],
      trustedPeers: [],
      failureLimit: { maxFailures: 10, windowSeconds: 60, blockSeconds: 600 },
    });
  });

  it('proxy and limits', () => {
    // The wake timeout belongs to the proxy work and is being tuned there.
    const { wakeTimeoutSeconds, ...proxy } = config.proxy;
    assert.ok(wakeTimeoutSeconds > 0 && wakeTimeoutSeconds < config.proxy.ringTimeoutSeconds);
    assert.deepEqual(proxy, {
      recordRoute: true,
      ringTimeoutSeconds: 60,
      liveFlowSeconds: 120,
      forking: 'parallel',
      sequentialGroupSeconds: 20,
      recurseOnRedirect: true,
      ringingOnPush: true,
      missedCallAlert: true,
      answeredElsewhereAlert: false,
      timelineRetentionSeconds: 3600,
      timelineMaxCalls: 10000,
      refreshPush: { enabled: true, leadSeconds: 120, retries: 2, retryIntervalSeconds: 30 },
      offlineMessages: { enabled: true, acceptAfterSeconds: 5, keepSeconds: 604800, maxPerUser: 100, maxBytes: 65536 },
    });
    assert.deepEqual(config.limits, { perCalleePerMinute: 30, perCallerPerMinute: 60, maxHeldPerAor: 5, maxHeldTotal: 10000 });
    assert.deepEqual(config.push, {});
  });

  it('a refresh push lead that would not fit in the shortest push binding is a config error', () => {
    assert.throws(() => validateConfig({ registrar: { minPushExpires: 100 } }), /proxy\.refreshPush\.leadSeconds.*below registrar\.minPushExpires/);
    assert.equal(validateConfig({ registrar: { minPushExpires: 100 }, proxy: { refreshPush: { leadSeconds: 90 } } }).proxy.refreshPush.leadSeconds, 90);
    assert.equal(validateConfig({ registrar: { minPushExpires: 100 }, proxy: { refreshPush: { enabled: false } } }).proxy.refreshPush.enabled, false);
  });

  it('a partial section keeps the other defaults of that section', () => {
    const c = validateConfig({ registrar: { minExpires: 30 } });
    assert.equal(c.registrar.minExpires, 30);
    assert.equal(c.registrar.minPushExpires, 180);
  });
});

describe('config files (YAML)', () => {
  it('reads a YAML file', () => {
    const path = file(['listen:', '  - udp:0.0.0.0:5060', 'domains: [example.com]', 'auth:', '  realm: example.com', '  users:', '    - username: alice', '      ha1Sha256: ' + 'a'.repeat(64), ''].join('\n'));
    const config = loadConfig(path);
    assert.deepEqual(config.listen, ['udp:0.0.0.0:5060']);
    assert.deepEqual(config.domains, ['example.com']);
    assert.equal(config.auth.realm, 'example.com');
    assert.deepEqual(config.auth.users, [{ username: 'alice', ha1Sha256: 'a'.repeat(64) }]);
  });

  it('a config file has no demo users; no file means the demo users', () => {
    assert.deepEqual(loadConfig(file('log: { level: warn }\n')).auth.users, []);
    const embedded = loadConfig(undefined);
    assert.deepEqual(embedded.auth.users, DEMO_USERS);
    assert.deepEqual(
      embedded.auth.users.map((u) => u.username),
      ['alice', 'bob', 'carol'],
    );
    assert.equal(embedded.auth.mode, 'digest', 'the demo is not an open registrar');
    assert.ok(embedded.listen.every((l) => l.includes(':127.0.0.1:')), 'loopback only');
  });

  it('an empty file is the default config', () => {
    assert.deepEqual(loadConfig(file('')), validateConfig({}));
    assert.deepEqual(loadConfig(file('# only a comment\n')), validateConfig({}));
  });

  it('bad YAML → ConfigError naming the file', () => {
    const path = file('listen: [udp:127.0.0.1:5060\nauth: {');
    const error = configError(() => loadConfig(path));
    assert.match(error.message, new RegExp(`^Config file ${path.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')} is not valid YAML at line \\d+, column \\d+: `));
  });

  it('a flag overriding a section that is not a mapping: the section is reported, not its characters', () => {
    const error = configError(() => loadConfig(file('admin: "127.0.0.1:21301"\nlog: debug\n'), { adminListen: '127.0.0.1:21302', logLevel: 'info' }));
    assert.match(error.message, /admin: Invalid input: expected object, received string/);
    assert.doesNotMatch(error.message, /Unrecognized keys: "0"/);
  });

  it('a YAML error does not quote the offending line (it may hold a secret)', () => {
    const error = configError(() => loadConfig(file('auth:\n  nonceSecret: "SECRET-zz9-plural-z-alpha\nlog:\n  level: info\n')));
    assert.doesNotMatch(error.message, /SECRET-zz9/);
    assert.match(error.message, /at line \d+, column \d+/);
  });

  it('VAPID keys are checked at startup, not at the first push', () => {
    assert.throws(() => parsePushConfig({ webpush: { vapidPublicKey: 'abc', vapidPrivateKey: 'def', subject: 'mailto:ops@example.com' } }), /vapidPublicKey must be a base64url P-256 public key/);
  });

  it('a top-level list or scalar → ConfigError', () => {
    assert.match(configError(() => readConfigFile(file('- a\n- b\n'))).message, /must contain a mapping at the top level/);
    assert.match(configError(() => readConfigFile(file('just text\n'))).message, /must contain a mapping at the top level/);
  });

  it('a missing file → ConfigError naming it', () => {
    const path = join(dir, 'does-not-exist.yaml');
    assert.match(configError(() => loadConfig(path)).message, /^Cannot read config file .*does-not-exist\.yaml: ENOENT/);
  });

  it('validation errors from a file carry paths', () => {
    const error = configError(() => loadConfig(file('registrar:\n  minExpires: soon\n')));
    assert.deepEqual(error.issues, ['registrar.minExpires: Invalid input: expected number, received string']);
  });
});

describe('flags override the file', () => {
  const path = file(['listen: [udp:0.0.0.0:5060]', 'dataDir: /var/lib/pushcall', 'log: { level: warn }', 'admin: { listen: "0.0.0.0:9000", enabled: false }', ''].join('\n'));

  it('--listen, --data-dir, --log-level, --admin', () => {
    const config = loadConfig(path, { listen: ['tcp:127.0.0.1:5070', 'udp:127.0.0.1:5070'], dataDir: '/tmp/x', logLevel: 'debug', adminListen: '127.0.0.1:9999' });
    assert.deepEqual(config.listen, ['tcp:127.0.0.1:5070', 'udp:127.0.0.1:5070']);
    assert.equal(config.dataDir, '/tmp/x');
    assert.equal(config.log.level, 'debug');
    assert.equal(config.admin.listen, '127.0.0.1:9999');
    assert.equal(config.admin.enabled, false, 'the rest of the section is kept');
  });

  it('no flags: the file values', () => {
    const config = loadConfig(path, { listen: [] });
    assert.deepEqual(config.listen, ['udp:0.0.0.0:5060']);
    assert.equal(config.dataDir, '/var/lib/pushcall');
    assert.equal(config.log.level, 'warn');
  });

  it('flags also apply to the embedded defaults (demo users kept)', () => {
    const config = loadConfig(undefined, { listen: ['udp:127.0.0.1:0'], dataDir: '/tmp/d' });
    assert.deepEqual(config.listen, ['udp:127.0.0.1:0']);
    assert.equal(config.dataDir, '/tmp/d');
    assert.equal(config.auth.users.length, 3);
  });

  it('an invalid flag value is reported with its config path', () => {
    assert.deepEqual(configError(() => loadConfig(path, { listen: ['udp:localhost'] })).issues, ['listen.0: expected <udp|tcp|tls|ws|wss>:<host>:<port>']);
    assert.deepEqual(configError(() => loadConfig(path, { logLevel: 'loud' })).issues.length, 1);
    assert.match(configError(() => loadConfig(path, { logLevel: 'loud' })).issues[0], /^log\.level: /);
  });
});

describe('pushcall serve with a bad config', () => {
  const main = join(dirname(fileURLToPath(import.meta.url)), '../../src/cli/main.ts');
  const root = join(dirname(fileURLToPath(import.meta.url)), '../../../..');

  it('prints the ConfigError and exits 2 (no stack trace)', () => {
    const path = file('listen: [http:127.0.0.1:80]\nregistrar: { bogus: 1 }\n');
    const result = spawnSync(process.execPath, ['--conditions=source', '--import', 'tsx', main, 'serve', '--config', path], { cwd: root, encoding: 'utf8', timeout: 30_000 });
    assert.equal(result.status, 2, result.stderr);
    assert.match(result.stderr, /^pushcall: Invalid configuration:\n {2}- listen\.0: expected <udp\|tcp\|tls\|ws\|wss>:<host>:<port>\n {2}- registrar: Unrecognized key: "bogus"\n$/);
  });
});
