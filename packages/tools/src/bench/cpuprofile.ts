/**
 * A V8 .cpuprofile (from `node --cpu-prof` or the inspector) as tables of
 * self time: by function, and by the part of the server each function
 * belongs to. Shares of samples are meaningful on a busy machine where
 * absolute times are not.
 */

export interface CpuProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number; columnNumber: number };
  children?: number[];
}

export interface CpuProfile {
  nodes: CpuProfileNode[];
  samples: number[];
  timeDeltas: number[];
  startTime: number;
  endTime: number;
}

export interface SelfTimeRow {
  name: string;
  ms: number;
  share: number;
}

export interface ProfileSummary {
  totalMs: number;
  /** Time the thread was idle (V8's "(idle)" node): the rest is work. */
  idleMs: number;
  functions: SelfTimeRow[];
  parts: SelfTimeRow[];
}

/**
 * The part of the server a source file belongs to, first match wins. Paths
 * are matched on the file's URL, so both the workspace (packages/core/src)
 * and node_modules are named.
 */
const PARTS: [string, RegExp][] = [
  ['HTTP/Hono (node:http, @hono/node-server, hono)', /\/node_modules\/(hono|@hono)\/|^node:(_http|http|net|stream|internal\/(http|streams|stream_base|net))|\/http\/(app|body|access-log|compression|content-encoding|route-table|metrics-route|errors)\.ts/],
  ['run record: journal (storage/journal.ts)', /\/storage\/journal\.ts/],
  ['run record: DynamoDB writer + AWS SDK', /\/storage\/(dynamo-runs|attribute-values|record-limits)\.ts|\/node_modules\/(@aws-sdk|@smithy|@aws-crypto)\//],
  ['JSON decode / encode (tensor/codec, json-*)', /\/tensor\/(codec|json-text|json-data|binary-data|protocol)\.ts/],
  ['validation (manifest/validate-inputs)', /\/manifest\/validate-inputs\.ts/],
  ['rows: splitting / joining (tensor/rows, executor/join)', /\/tensor\/rows\.ts|\/executor\/join\.ts/],
  ['batching (batching/)', /\/batching\//],
  ['executor bookkeeping (executor/, deadline)', /\/executor\/|\/deadline\.ts/],
  ['stage runtimes + transports (runtime/, transport/)', /\/runtime\/|\/transport\//],
  ['metrics / statistics / monitors observers', /\/observability\/(metrics|statistics|events|bucket-histogram|emf)\.ts|\/pipelines\/observers\.ts|\/monitors\//],
  ['tracing ids (observability/trace-context, spans, tracing, request-trace)', /\/observability\/(trace-context|spans|tracing)\.ts|\/http\/request-trace\.ts/],
  ['onnxruntime-node', /\/node_modules\/onnxruntime-/],
  ['function stages (models/)', /\/models\//],
  ['other Ensemble code', /\/packages\/(core|tools)\/src\//],
  ['other Node internals', /^node:/],
];

/** V8's pseudo-frames: garbage collection and native code have no URL. */
function partOf(url: string, functionName: string): string {
  if (functionName === '(garbage collector)') return 'garbage collection';
  if (functionName === '(program)') return '(program: native, outside JS)';
  for (const [name, re] of PARTS) if (re.test(url)) return name;
  return url ? `other (${url.replace(/^.*\/node_modules\//, '').split('/')[0]})` : '(native)';
}

function shortUrl(url: string): string {
  return url.replace(/^file:\/\//, '').replace(/^.*\/(packages\/|node_modules\/|models\/)/, '$1');
}

export function summarizeProfile(p: CpuProfile, top = 30): ProfileSummary {
  const byId = new Map(p.nodes.map((n) => [n.id, n]));
  const parent = new Map<number, number>();
  for (const n of p.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  // Native frames (writev, JSON.parse, a setter) belong to the part whose JavaScript called them.
  const owner = (id: number): CpuProfileNode => {
    let n = byId.get(id)!;
    for (let at: number | undefined = id; at !== undefined; at = parent.get(at)) {
      const f = byId.get(at)!;
      if (f.callFrame.url) return f;
      if (at === id && f.callFrame.functionName.startsWith('(')) return f;
      n = f;
    }
    return n;
  };
  const selfUs = new Map<number, number>();
  // timeDeltas[i] is the time before sample i; the sample's node ran for the next delta (V8's own attribution).
  for (let i = 0; i < p.samples.length; i++) {
    const dt = p.timeDeltas[i + 1] ?? 0;
    selfUs.set(p.samples[i], (selfUs.get(p.samples[i]) ?? 0) + Math.max(0, dt));
  }
  let idleUs = 0;
  let totalUs = 0;
  const fns = new Map<string, number>();
  const parts = new Map<string, number>();
  for (const [id, us] of selfUs) {
    const { functionName, url, lineNumber } = byId.get(id)!.callFrame;
    totalUs += us;
    if (functionName === '(idle)') { idleUs += us; continue; }
    const key = `${functionName || '(anonymous)'} ${url ? `${shortUrl(url)}:${lineNumber + 1}` : ''}`.trim();
    fns.set(key, (fns.get(key) ?? 0) + us);
    const o = owner(id).callFrame;
    const part = partOf(o.url, o.functionName);
    parts.set(part, (parts.get(part) ?? 0) + us);
  }
  const busyUs = totalUs - idleUs;
  const rows = (m: Map<string, number>) => [...m].sort((a, b) => b[1] - a[1])
    .map(([name, us]) => ({ name, ms: us / 1000, share: busyUs > 0 ? us / busyUs : 0 }));
  return { totalMs: totalUs / 1000, idleMs: idleUs / 1000, functions: rows(fns).slice(0, top), parts: rows(parts) };
}

/** Markdown tables of a summary: shares are of the busy (non-idle) time. */
export function renderProfileSummary(s: ProfileSummary): string {
  const pct = (x: number) => `${(x * 100).toFixed(1)}%`;
  const table = (title: string, rows: SelfTimeRow[]) => [
    `| ${title} | self ms | share of busy time |`, '| --- | ---: | ---: |',
    ...rows.map((r) => `| ${r.name.replace(/\|/g, '\\|')} | ${r.ms.toFixed(0)} | ${pct(r.share)} |`),
  ].join('\n');
  return [
    `Profiled ${s.totalMs.toFixed(0)} ms, busy ${(s.totalMs - s.idleMs).toFixed(0)} ms.`,
    '',
    table('part', s.parts),
    '',
    table('function (self time)', s.functions),
  ].join('\n');
}
