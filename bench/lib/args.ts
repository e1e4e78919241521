/** The value after `--name` on the command line, or undefined when the flag is absent. */
export function flagValue(name: string): string | undefined {
  const at = process.argv.indexOf(name);
  return at === -1 ? undefined : process.argv[at + 1];
}
