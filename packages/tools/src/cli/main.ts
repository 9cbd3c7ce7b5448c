import type { Command } from './args.js';
import { helpText, parse } from './args.js';
import { serveCommand } from './commands/serve.js';
import { pushCommand } from './commands/push.js';
import { runsCommand } from './commands/runs.js';
import { inferCommand } from './commands/infer.js';
import { jobCommand } from './commands/job.js';
import { listCommand } from './commands/list.js';
import { buildModelsCommand } from './commands/build-models.js';
import { decomposeCommand } from './commands/decompose.js';
import { verifyCommand } from './commands/verify.js';
import { benchCommand } from './commands/bench.js';
import { tuneCommand } from './commands/tune.js';
import { soakCommand } from './commands/soak.js';
import { initCommand } from './commands/init.js';
import { packageCommand } from './commands/package.js';
import { planCommand } from './commands/plan.js';
import { monitorCommand } from './commands/monitor.js';
import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { EnsembleError, type ErrorCode } from '@ensemble/core/errors.js';

const COMMANDS: Command[] = [initCommand, serveCommand, listCommand, inferCommand, jobCommand, runsCommand, pushCommand, buildModelsCommand, decomposeCommand, verifyCommand, benchCommand, tuneCommand, soakCommand, planCommand, packageCommand, monitorCommand];

function usage(): string {
  const w = Math.max(...COMMANDS.map((c) => c.name.length));
  return [
    'ensemble — serve a model cut into stages',
    '',
    'usage: ensemble <command> [options]      (ensemble <command> --help for its options; ensemble --version)',
    '',
    'commands:',
    ...COMMANDS.map((c) => `  ${c.name.padEnd(w)}  ${c.summary}`),
  ].join('\n');
}

async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (name === '--version' || name === '-v' || name === 'version') {
    console.log(`ensemble ${await version()} (node ${process.versions.node}, onnxruntime-node ${await packageVersion('onnxruntime-node')})`);
    return 0;
  }
  if (!name || name === '--help' || name === '-h' || name === 'help') {
    console.log(usage());
    return name ? 0 : 2;
  }
  const cmd = COMMANDS.find((c) => c.name === name);
  if (!cmd) {
    console.error(`unknown command '${name}'\n\n${usage()}`);
    return 2;
  }
  const { values, positionals } = parse(cmd, rest);
  if (values.help) { console.log(helpText(cmd)); return 0; }
  return (await cmd.run({ values, positionals })) ?? 0;
}

main(process.argv.slice(2)).then(
  (code) => { process.exitCode = code; },
  (e: unknown) => {
    const msg = e instanceof Error ? e.message : String(e);
    console.error(`error: ${msg}`);
    process.exitCode = e instanceof EnsembleError ? exitCode(e.code) : 1;
  },
);

/** The project's version, from the package.json at the repository root. */
async function version(): Promise<string> {
  const root = fileURLToPath(new URL('../../../../package.json', import.meta.url));
  return (JSON.parse(await readFile(root, 'utf8')) as { version: string }).version;
}

async function packageVersion(name: string): Promise<string> {
  try {
    const file = createRequire(import.meta.url).resolve(`${name}/package.json`);
    return (JSON.parse(await readFile(file, 'utf8')) as { version: string }).version;
  } catch {
    return 'not installed';
  }
}

/** 2 for a command called wrongly (as usage() itself), 1 for every other failure. */
function exitCode(code: ErrorCode): number {
  return code === 'usage' ? 2 : 1;
}
