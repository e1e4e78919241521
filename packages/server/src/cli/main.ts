#!/usr/bin/env node
import { Command } from 'commander';
import { registerServeCommand } from './serve.js';

const program = new Command();
program.name('pushcall').description('Ring a sleeping phone over SIP: RFC 8599 registrar/proxy with a push gateway').version('0.1.0');
registerServeCommand(program);

try {
  const { registerPushCommand } = await import('./push-command.js');
  registerPushCommand(program);
} catch {
  // push command not available in this build
}

await program.parseAsync(process.argv);
