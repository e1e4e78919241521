import { readFileSync } from 'node:fs';
import { parse as parseYaml } from 'yaml';
import { ConfigError } from '../errors.js';
import { type ConfigInput, type PushcallConfig, configSchema } from './schema.js';

export type { ConfigInput, PushcallConfig };

/** Users the README's run command works with when no config file is given. */
export const DEMO_USERS = [
  { username: 'alice', password: 'alice-secret' },
  { username: 'bob', password: 'bob-secret' },
  { username: 'carol', password: 'carol-secret' },
];

/** Validate a config object; every problem is reported with its path. */
export function validateConfig(input: unknown): PushcallConfig {
  const result = configSchema.safeParse(input ?? {});
  if (result.success) return result.data;
  const issues = result.error.issues.map((i) => `${i.path.length ? i.path.join('.') : '(root)'}: ${i.message}`);
  throw new ConfigError('Invalid configuration', issues);
}

export function readConfigFile(path: string): ConfigInput {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (error) {
    throw new ConfigError(`Cannot read config file ${path}: ${(error as Error).message}`);
  }
  try {
    const parsed: unknown = parseYaml(text);
    if (parsed !== null && (typeof parsed !== 'object' || Array.isArray(parsed))) {
      throw new ConfigError(`Config file ${path} must contain a mapping at the top level`);
    }
    return (parsed ?? {}) as ConfigInput;
  } catch (error) {
    if (error instanceof ConfigError) throw error;
    // The yaml library's message quotes the offending line, which may hold a secret (an
    // unterminated key or password): only the first line of it, and where.
    const e = error as Error & { linePos?: Array<{ line: number; col: number }> };
    const at = e.linePos?.[0] ? ` at line ${e.linePos[0].line}, column ${e.linePos[0].col}` : '';
    const what = e.message.split('\n')[0].replace(/ at line \d+, column \d+:?$/, '');
    throw new ConfigError(`Config file ${path} is not valid YAML${at}: ${what}`);
  }
}

export interface ConfigOverrides {
  listen?: string[];
  dataDir?: string;
  logLevel?: string;
  adminListen?: string;
}

/**
 * File, then flags. Without a file, the embedded defaults include demo users so that
 * `pushcall serve` works with no setup (on loopback only).
 */
export function loadConfig(file: string | undefined, overrides: ConfigOverrides = {}): PushcallConfig {
  const input: Record<string, unknown> = file ? { ...(readConfigFile(file) as Record<string, unknown>) } : {};
  if (!file) input.auth = { users: DEMO_USERS };
  if (overrides.listen && overrides.listen.length > 0) input.listen = overrides.listen;
  if (overrides.dataDir) input.dataDir = overrides.dataDir;
  // A flag overrides one key of its section; a section that is not a mapping is left for the
  // schema to report as such (spreading a string would report its characters as keys).
  if (overrides.logLevel) input.log = isMapping(input.log) ? { ...input.log, level: overrides.logLevel } : input.log ?? { level: overrides.logLevel };
  if (overrides.adminListen) input.admin = isMapping(input.admin) ? { ...input.admin, listen: overrides.adminListen } : input.admin ?? { listen: overrides.adminListen };
  return validateConfig(input);
}

function isMapping(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
