// The `sealed` command: one small dispatcher, one module per subcommand so each
// part of the system owns its own flags and help text.
import * as nodeCrypto from 'node:crypto';
import process from 'node:process';
import { useNodeCrypto } from '../transport/node-backend.js';

// ONNX Runtime's telemetry (a local database, a debug log, HTTPS uploads) stays off in every
// subcommand, the bench's transformers.js mode included (engine/ort.ts does it for the engine).
process.env.ORT_DISABLE_TELEMETRY = '1';

export interface Command {
  /** One line for the top-level help. */
  summary: string;
  /** Runs the subcommand; resolves to the process exit code. */
  run(argv: string[]): Promise<number>;
}

const COMMANDS = ['serve', 'chat', 'proxy', 'verify', 'measure', 'bench'] as const;
type CommandName = (typeof COMMANDS)[number];

async function load(name: CommandName): Promise<Command> {
  const mod = (await import(`./commands/${name}.js`)) as { command: Command };
  return mod.command;
}

async function usage(): Promise<string> {
  const lines = ['usage: sealed <command> [options]', '', 'commands:'];
  for (const name of COMMANDS) lines.push(`  ${name.padEnd(8)} ${(await load(name)).summary}`);
  lines.push('', 'Every command takes --help.');
  return lines.join('\n');
}

export async function main(argv: string[]): Promise<number> {
  // Every subcommand runs in Node: OpenSSL's AEADs and X25519 are several times faster than pure JS
  // on the small chunks of a token stream (transport/ stays browser-loadable; the host opts in).
  useNodeCrypto(nodeCrypto);
  const [name, ...rest] = argv;
  if (name === undefined || name === '--help' || name === '-h' || name === 'help') {
    process.stdout.write((await usage()) + '\n');
    return name === undefined ? 2 : 0;
  }
  if (!(COMMANDS as readonly string[]).includes(name)) {
    process.stderr.write(`sealed: unknown command '${name}'\n${await usage()}\n`);
    return 2;
  }
  return (await load(name as CommandName)).run(rest);
}

const invokedDirectly = process.argv[1] !== undefined && /[\\/]cli[\\/]sealed\.(ts|js)$/.test(process.argv[1]);
if (invokedDirectly) {
  main(process.argv.slice(2)).then(
    (code) => { process.exitCode = code; },
    (err: unknown) => {
      process.stderr.write(`sealed: internal error: ${err instanceof Error ? err.message : String(err)}\n`);
      process.exitCode = 1;
    },
  );
}
