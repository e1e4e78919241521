#!/usr/bin/env node
import { Command } from 'commander';
import { registerCheckConfigCommand } from './check-config.js';
import { registerMigrateStoreCommand } from './migrate-store.js';
import { registerServeCommand } from './serve.js';

const program = new Command();
program.name('pushcall').description('Ring a sleeping phone over SIP: RFC 8599 registrar/proxy with a push gateway').version('0.1.0');
registerServeCommand(program);
registerCheckConfigCommand(program);
registerMigrateStoreCommand(program);

try {
  const { registerPushCommand } = await import('./push-command.js');
  registerPushCommand(program);
} catch {
  // push command not available in this build
}

// `pushcall sim` (the phone fleet) ships with the testkit; loaded only when asked for, so
// `pushcall serve` does not pay for it.
if (process.argv[2] === 'sim') {
  try {
    // A specifier in a variable: the testkit depends on this package, not the other way round,
    // so the compiler must not try to resolve it when building the server.
    const testkitModule = '@pushcall/testkit';
    const testkit = (await import(testkitModule)) as { registerSimCommand?: (p: Command) => void };
    testkit.registerSimCommand?.(program);
  } catch (error) {
    if ((error as { code?: string }).code !== 'ERR_MODULE_NOT_FOUND') throw error;
    process.stderr.write('pushcall: the sim command needs @pushcall/testkit\n');
    process.exit(2);
  }
}

await program.parseAsync(process.argv);
