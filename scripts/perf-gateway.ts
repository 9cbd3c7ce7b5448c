/**
 * Where the gateway's CPU goes under OCR load, from the kernel's CPU-time
 * sampler (Linux perf, `cpu-clock`) rather than the inspector's profiler.
 * The inspector samples the main thread's stack on a wall clock: on a busy
 * machine a thread preempted inside a syscall (a pipe write that wakes a
 * worker, a socket write that wakes the emulator) keeps being charged for the
 * time it is off the CPU, and the other threads (libuv's pool, V8's compiler
 * and GC helpers) are not in it at all. perf counts only time on a CPU, for
 * every thread of the process.
 *
 * The benchmark's server for one pipeline (emulators in a process of their
 * own, stage workers) in this process, warmed, then loaded at one concurrency
 * while `perf record` samples this process (WORKERS=1: and its stage
 * workers); the report is CPU per image for each process: its main thread by
 * its innermost JavaScript function (the native code it calls included);
 * every thread by binary, by how it entered the kernel, and by node's and
 * libc's own functions; the other threads by name.
 *
 *   apt-get install linux-perf    # once
 *   node --perf-basic-prof --import tsx scripts/perf-gateway.ts
 *   CONCURRENCY=4 REQUESTS=96 node --perf-basic-prof --import tsx scripts/perf-gateway.ts
 *   WORKERS=1 NODE_OPTIONS=--perf-basic-prof node --import tsx scripts/perf-gateway.ts   # the workers' JavaScript named too
 */
import { spawn, spawnSync } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startBenchServer } from '../packages/tools/src/bench/bench-server.js';
import { ocrSamples } from '../packages/tools/src/bench/ocr-images.js';
import { runLoadInChild } from '../packages/tools/src/bench/load.js';
import { childPids, childRole } from '../packages/tools/src/bench/process-memory.js';

process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
const root = resolve(fileURLToPath(new URL('..', import.meta.url)));
const concurrency = Number(process.env.CONCURRENCY ?? 16);
const requests = Number(process.env.REQUESTS ?? 192);
const withWorkers = process.env.WORKERS === '1';
const hz = 999;
if (![concurrency, requests].every((n) => Number.isInteger(n) && n >= 1)) throw new Error('CONCURRENCY and REQUESTS must be positive integers');
if (spawnSync('perf', ['--version']).status !== 0) throw new Error('perf is not installed (Debian: apt-get install linux-perf)');
if (!process.execArgv.includes('--perf-basic-prof') && !(process.env.NODE_OPTIONS ?? '').includes('--perf-basic-prof')) {
  console.error('note: without node --perf-basic-prof, JavaScript frames have no names (see the usage at the top of this file)');
}

const dataDir = await mkdtemp(join(tmpdir(), 'ensemble-perf-gateway-'));
const data = join(dataDir, 'perf.data');
const server = await startBenchServer({ dataDir, modelsDir: join(root, 'models'), pipelines: ['ocr'], log: () => undefined });
try {
  const bodies = (await ocrSamples()).map((s) => ({ path: '/v2/models/ocr/infer', headers: { 'content-type': 'image/png' }, body: new Uint8Array(s.png) }));
  await runLoadInChild({ url: server.url, requests: bodies, concurrency, maxRequests: 48, maxDurationMs: 60_000 });
  const roles = new Map<number, string>([[process.pid, 'gateway']]);
  // The stage workers, not the warm-up's load generator (argv `ensemble:load`), which is on its way out.
  if (withWorkers) for (const pid of childPids(process.pid)) if (/^worker (?!load$)/.test(childRole(pid))) roles.set(pid, childRole(pid));
  console.error(`recording ${[...roles].map(([p, r]) => `${r} ${p}`).join(", ")}`);
  const perf = spawn('perf', ['record', '-e', 'cpu-clock', '-F', String(hz), '-g', '-p', [...roles.keys()].join(','), '-o', data], { stdio: ['ignore', 'ignore', 'pipe'] });
  // Read what perf says as it goes (a full pipe would stop it), and see it end whenever it does.
  let perfSays = '';
  perf.stderr.setEncoding('utf8').on('data', (d: string) => { perfSays += d; });
  const perfEnded = new Promise<number | null>((done) => perf.once('exit', done));
  await new Promise((r) => setTimeout(r, 500));
  if (perf.exitCode !== null) throw new Error(`perf record ended at once: ${perfSays}`);
  const u0 = process.cpuUsage();
  const r = await runLoadInChild({ url: server.url, requests: bodies, concurrency, maxRequests: requests, maxDurationMs: 180_000 });
  const u = process.cpuUsage(u0);
  perf.kill('SIGINT');
  await perfEnded;
  const script = spawnSync('perf', ['script', '-i', data, '-F', 'comm,pid,tid,ip,sym,dso'], { maxBuffer: 1 << 30, encoding: 'utf8' });
  if (script.status !== 0) throw new Error(`perf script failed: ${script.stderr}`);
  console.log(`c=${concurrency}: ${r.ok} images, ${r.throughput.toFixed(1)} images/s, this process ${((u.user + u.system) / 1000 / r.ok).toFixed(1)} ms CPU per image (process.cpuUsage)\n`);
  const all = [...samples(script.stdout)];
  for (const [pid, role] of roles) console.log(`## ${role} (pid ${pid})\n\n${summarise(all.filter((x) => x.pid === pid), pid, r.ok)}\n`);
} finally {
  await server.close();
  await rm(dataDir, { recursive: true, force: true });
}

interface Sample { thread: string; pid: number; tid: number; frames: { sym: string; dso: string }[] }

/** perf script's samples: per thread, the frames innermost first (symbol, binary). */
function* samples(text: string): Generator<Sample> {
  for (const block of text.split('\n\n')) {
    const lines = block.split('\n').filter((l) => l.trim());
    if (lines.length < 2) continue;
    // The thread's name (it may hold spaces), then pid/tid.
    const head = /^\s*(.*?)\s+(\d+)\/(\d+)\s*$/.exec(lines[0]);
    if (!head) continue;
    const [thread, pid, tid] = [head[1], Number(head[2]), Number(head[3])];
    const frames = lines.slice(1).map((l) => {
      const m = /^\s*[0-9a-f]+ (.*) \((.*)\)$/.exec(l);
      return m ? { sym: m[1].replace(/\+0x[0-9a-f]+$/, '').replace(`file://${root}/`, ''), dso: m[2].split('/').pop()! } : undefined;
    }).filter((f): f is { sym: string; dso: string } => f !== undefined);
    if (frames.length) yield { thread, pid, tid, frames };
  }
}

/** One more sample for `key`. */
function count(m: Map<string, number>, key: string): void {
  m.set(key, (m.get(key) ?? 0) + 1);
}

function summarise(list: Sample[], mainTid: number, images: number): string {
  const msPerSample = 1000 / hz;
  const perImage = (n: number) => ((n * msPerSample) / images).toFixed(2);
  const byJs = new Map<string, number>();
  const byDso = new Map<string, number>();
  const byKernel = new Map<string, number>();
  const byNative = new Map<string, number>();
  const byThread = new Map<string, number>();
  let kernel = 0;
  let main = 0;
  let others = 0;
  for (const s of list) {
    const leaf = s.frames[0];
    const dso = /^perf-\d+\.map$/.test(leaf.dso) ? 'JavaScript (V8\'s compiled code)' : leaf.dso;
    count(byDso, dso);
    // Node's own code (V8, its garbage collector and builtins, libuv) and libc's, by function.
    if (leaf.dso === 'node' || leaf.dso.startsWith('libc.')) count(byNative, `${leaf.sym} (${leaf.dso})`);
    if (leaf.dso === '[kernel.kallsyms]') {
      // The kernel's frames up to the first of user space: the syscall or fault that brought it in, and where it was.
      kernel++;
      const user = s.frames.findIndex((f) => f.dso !== '[kernel.kallsyms]');
      const k = s.frames.slice(0, user < 0 ? s.frames.length : user);
      const entry = [...k].reverse().find((f) => /^(__x64_sys_|asm_exc_|do_|ksys_)/.test(f.sym))?.sym ?? k[k.length - 1].sym;
      count(byKernel, `${entry} > ${leaf.sym}`);
    }
    if (s.tid !== mainTid) {
      others++;
      count(byThread, `${s.thread.replace(/\d+$/, 'N')} > ${dso}`);
      continue;
    }
    main++;
    const js = s.frames.find((f) => f.sym.startsWith('JS:'));
    // Without JavaScript on the stack: ONNX Runtime's run (its frames have no frame pointers) or the event loop itself.
    const key = js ? js.sym.replace(/:\d+:\d+$/, '') : `(no JavaScript: ${s.frames[s.frames.length - 1].sym === '[unknown]' ? leaf.dso : 'event loop'})`;
    count(byJs, key);
  }
  const table = (title: string, m: Map<string, number>, total: number, n: number) => [
    `| ${title} | ms per image | share |`, '| --- | ---: | ---: |',
    ...[...m].sort((a, b) => b[1] - a[1]).slice(0, n).map(([k, v]) => `| ${k.replace(/\|/g, '\\|')} | ${perImage(v)} | ${((v * 100) / total).toFixed(1)}% |`),
  ].join('\n');
  return [
    `CPU per image: main thread ${perImage(main)} ms, other threads ${perImage(others)} ms (${hz} Hz cpu-clock samples).`,
    '', table('main thread, innermost JavaScript function', byJs, main, 30),
    '', table('every thread, binary of the innermost frame', byDso, main + others, 12),
    '', table('every thread, in the kernel: how it entered > where it was', byKernel, kernel, 12),
    '', table('every thread, in node and libc: the function', byNative, main + others, 15),
    '', table('the other threads, by name > binary of the innermost frame', byThread, others, 12),
  ].join('\n');
}
