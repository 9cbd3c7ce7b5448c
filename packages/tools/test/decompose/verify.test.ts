import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import { decomposeModel } from '../../src/decompose/decompose.js';
import { verifyPipeline } from '../../src/decompose/verify.js';
import { LocalFileWeightStore } from '../../src/pipelines/local-weights.js';
import { loadManifest } from '../../../core/src/manifest/load.js';
import { verifyManifest } from '../../../core/src/manifest/verify.js';
import { SKIP_DIM, SKIP_WEIGHTS, skipConnectionModel, writeModel } from '../../../core/test/fixtures/models.js';
import { halfCutModel, longSkipModel } from './models.js';

const run = promisify(execFile);
const ROOT = resolve(import.meta.dirname, '../../../..');
const CLI = join(ROOT, 'bin/ensemble.mjs');

const dirs: string[] = [];
function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'ensemble-decompose-'));
  dirs.push(dir);
  return dir;
}
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

/** skipConnectionModel with w3 changed a little: same graph, different numbers. */
function perturbedSkipModel(): Uint8Array {
  return skipConnectionModel({ ...SKIP_WEIGHTS, w3: Float32Array.from(SKIP_WEIGHTS.w3, (v, i) => (i === 5 ? v + 0.01 : v)) });
}

describe('decomposeModel + verifyPipeline', () => {
  it('writes stage models and a pipeline that loads, passes the manifest checks and matches the whole model', async () => {
    const dir = tempDir();
    const { path: modelPath } = writeModel(dir, 'long.onnx', longSkipModel());
    const report = await decomposeModel(modelPath, { stages: 3 }, { outDir: join(dir, 'out'), name: 'long', sampleBatch: 2, runs: 1 });
    expect(report.files.map((f) => f.slice(dir.length))).toEqual(['/out/long_1.onnx', '/out/long_2.onnx', '/out/long_3.onnx']);
    expect(report.timing?.stageMs).toHaveLength(3);
    expect(report.timing?.sampleShapes).toEqual({ x: [2, 4] });

    const m = await loadManifest(report.manifestPath);
    expect(m.name).toBe('long');
    expect(m.stages.map((s) => s.name)).toEqual(['long_1', 'long_2', 'long_3']);
    expect(m.inputs).toEqual([{ name: 'x', datatype: 'FP32', shape: [-1, 4] }]);
    expect(m.outputs).toEqual([{ name: 'y', datatype: 'FP32', shape: [-1, 6] }]);
    // The model-side checks the server runs before serving: every input fed, types and ranks agree.
    const files = await verifyManifest(m, new LocalFileWeightStore(m));
    expect(Object.keys(files)).toEqual(['long_1', 'long_2', 'long_3']);

    const lines: string[] = [];
    const result = await verifyPipeline(m, modelPath, { samples: 2, batch: 3, log: (l) => lines.push(l) });
    expect(result.ok).toBe(true);
    expect(result.stages).toEqual(['long_1', 'long_2', 'long_3']);
    expect(result.samples).toBe(2);
    expect(result.outputs).toHaveLength(1);
    expect(result.outputs[0]).toMatchObject({ output: 'y', tensor: 'y' });
    expect(result.outputs[0].maxAbs).toBeLessThanOrEqual(1e-6);
    expect(lines).toContain('sample 2/2: x [3, 4]');
  });

  it('reports the difference when the stages do not compute the model', async () => {
    const dir = tempDir();
    const { path: modelPath } = writeModel(dir, 'skip.onnx', skipConnectionModel());
    const { path: otherPath } = writeModel(dir, 'other.onnx', perturbedSkipModel());
    const report = await decomposeModel(modelPath, { at: ['h3'] }, { outDir: dir, name: 'skip', sampleBatch: 0 });
    expect(report.timing).toBeUndefined();
    await expect(verifyPipeline(report.manifestPath, otherPath)).rejects.toThrow(/no ONNX stage was cut from/);
    const result = await verifyPipeline(report.manifestPath, otherPath, { stages: ['skip_1', 'skip_2'], samples: 1 });
    expect(result.ok).toBe(false);
    expect(result.outputs[0].maxAbs).toBeGreaterThan(1e-4);
    // A stage file that no longer matches its sha256 is refused, as S3 weights are.
    writeFileSync(report.files[1], readFileSync(join(dir, 'other.onnx')));
    await expect(verifyPipeline(report.manifestPath, modelPath, { stages: ['skip_1', 'skip_2'] })).rejects.toThrow(/has sha256 [0-9a-f]{64}, the manifest pins/);
  });
});

describe('ensemble decompose / verify (CLI)', () => {
  it('cuts, prints the stage table, verifies (exit 0), and fails verification past the tolerance (exit 1)', async () => {
    const dir = tempDir();
    const { path: modelPath } = writeModel(dir, 'skip.onnx', skipConnectionModel());
    writeModel(dir, 'other.onnx', perturbedSkipModel());
    const env = { ...process.env, NODE_NO_WARNINGS: '1' };
    const cut = await run(process.execPath, [CLI, 'decompose', modelPath, '--stages', '2', '--out', join(dir, 'out'), '--name', 'skip', '--runs', '1'], { cwd: dir, env });
    expect(cut.stdout).toMatch(/^stage\s+nodes\s+params\s+weights\s+est\. cost\s+est\. \(ms\)\s+time \(ms\)\s+reads$/m);
    expect(cut.stdout).toMatch(/^skip_1\s+\d+\s+[\d,]+\s+/m);
    expect(cut.stdout).toMatch(/^skip_2 .* x, h\d \(stage 1\)$/m);
    expect(cut.stdout).toMatch(/^whole model\s+8\s+544\s+2\.1 KiB\s+100%/m);
    expect(cut.stdout).toContain('wrote out/pipeline.yaml');
    expect(cut.stderr).toContain('probing: 8 nodes at batch 1 and 2, in slices of about 64.0 MiB of tensors per run');

    const ok = await run(process.execPath, [CLI, 'verify', 'out/pipeline.yaml', '--against', 'skip.onnx', '--samples', '2'], { cwd: dir, env });
    expect(ok.stdout).toMatch(/^y\s+y\s+(0|\d\.\d\de-\d+)\s+/m);
    expect(ok.stdout).toContain('tolerance: atol 0.0001, rtol 0.0001 (from the datatypes crossing the cuts (FP32) and of the outputs (FP32))');
    expect(ok.stdout).toMatch(/^ok: within tolerance \(2 samples, stages skip_1, skip_2\)$/m);

    // Inputs from an Open Inference Protocol request body, keyed by the model's input name.
    const request = { inputs: [{ name: 'x', datatype: 'FP32', shape: [3, SKIP_DIM], data: Array.from({ length: 3 * SKIP_DIM }, (_, i) => Math.cos(i)) }] };
    writeFileSync(join(dir, 'request.json'), JSON.stringify(request));
    const bad = await run(process.execPath, [CLI, 'verify', 'out', '--against', 'other.onnx', '--stage', 'skip_1,skip_2', '--inputs', 'request.json'], { cwd: dir, env })
      .then(() => ({ code: 0, stdout: '', stderr: '' }), (e: { code: number; stdout: string; stderr: string }) => e);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toContain('sample 1/1: x [3, 8]');
    expect(bad.stdout).toMatch(/^FAILED: over tolerance \(1 sample, stages skip_1, skip_2\)$/m);
  });
});

describe('ensemble verify: tolerances from the datatypes', () => {
  it('defaults to the FP16 tolerance when an FP16 tensor crosses the cut, prints it, and --atol/--rtol override it', async () => {
    const dir = tempDir();
    const { path: modelPath } = writeModel(dir, 'half.onnx', halfCutModel());
    // Off by about 1e-3 at the output: inside FP16's 1e-2, outside FP32's 1e-4.
    writeModel(dir, 'other.onnx', halfCutModel(1e-3));
    const env = { ...process.env, NODE_NO_WARNINGS: '1' };
    await run(process.execPath, [CLI, 'decompose', modelPath, '--at', 'h16', '--out', 'out', '--name', 'half', '--sample-batch', '0'], { cwd: dir, env });
    const m = await loadManifest(join(dir, 'out/pipeline.yaml'));
    expect(m.stages[1].inputs).toEqual({ h16: 'h16' });

    const same = await verifyPipeline(m, modelPath, { samples: 1 });
    expect(same).toMatchObject({ ok: true, crossing: ['FP16'], outputTypes: ['FP32'], tolerance: { atol: 1e-2, rtol: 1e-2 } });

    const args = ['verify', 'out', '--against', 'other.onnx', '--stage', 'half_1,half_2', '--samples', '2'];
    const loose = await run(process.execPath, [CLI, ...args], { cwd: dir, env });
    expect(loose.stdout).toContain('tolerance: atol 0.01, rtol 0.01 (from the datatypes crossing the cuts (FP16) and of the outputs (FP32))');
    expect(loose.stdout).toMatch(/^ok: within tolerance/m);
    const maxAbs = Number(/^y\s+y\s+(\S+)/m.exec(loose.stdout)?.[1]);
    expect(maxAbs).toBeGreaterThan(1e-4);
    expect(maxAbs).toBeLessThan(1e-2);

    const strict = await run(process.execPath, [CLI, ...args, '--atol', '1e-4', '--rtol', '1e-4'], { cwd: dir, env })
      .then(() => ({ code: 0, stdout: '' }), (e: { code: number; stdout: string }) => e);
    expect(strict.code).toBe(1);
    expect(strict.stdout).toContain('tolerance: atol 0.0001, rtol 0.0001 (from the datatypes crossing the cuts (FP16) and of the outputs (FP32); overridden by --atol/--rtol)');
    expect(strict.stdout).toMatch(/^FAILED: over tolerance \(2 samples, stages half_1, half_2\)$/m);
  });
});

describe('ensemble decompose: what crosses each cut', () => {
  it('prints per cut the tensors, their item shape and bytes (a skip at every cut it spans), and estimated next to measured times', async () => {
    const dir = tempDir();
    const { path: modelPath } = writeModel(dir, 'long.onnx', longSkipModel());
    const env = { ...process.env, NODE_NO_WARNINGS: '1' };
    const { stdout } = await run(process.execPath, [CLI, 'decompose', modelPath, '--at', 'h2,h4', '--out', 'out', '--name', 'long', '--runs', '1'], { cwd: dir, env });
    expect(stdout).toMatch(/^stage\s+nodes\s+params\s+weights\s+est\. cost\s+est\. \(ms\)\s+time \(ms\)\s+reads$/m);
    expect(stdout).toMatch(/^long_1\s.*%\s+\d+\.\d+\s+\d+\.\d+\s+x$/m);
    expect(stdout).toContain('cut 1 (long_1 | long_2): 2 tensors, 48 B per item');
    expect(stdout).toContain('cut 2 (long_2 | long_3): 2 tensors, 48 B per item');
    expect(stdout).toMatch(/^\s+h1\s+FP32\s+\[6\]\s+24\s+stage 1\s+stage 3$/m);
    expect(stdout).toMatch(/^\s+h2\s+FP32\s+\[6\]\s+24\s+stage 1\s+stage 2$/m);
    expect(stdout).toMatch(/^\s+h4\s+FP32\s+\[6\]\s+24\s+stage 2\s+stage 3$/m);
    expect(stdout.match(/^\s+h1\s/gm)).toHaveLength(2);
  });
});

describe('--dim on a named batch dim', () => {
  it('fixes dim 0 by its name for probing, timing and verify samples; the positional batch still works without it', async () => {
    const dir = tempDir();
    const { path: modelPath } = writeModel(dir, 'long.onnx', longSkipModel());
    const env = { ...process.env, NODE_NO_WARNINGS: '1' };
    const cut = await run(process.execPath, [CLI, 'decompose', modelPath, '--stages', '2', '--dim', 'batch=3', '--out', 'out', '--runs', '1'], { cwd: dir, env });
    expect(cut.stderr).toContain('probing: 9 nodes at batch 3,');
    expect(cut.stdout).toContain('times: median of runs on x [3, 4]');
    const named = await run(process.execPath, [CLI, 'verify', 'out', '--against', 'long.onnx', '--dim', 'batch=1', '--samples', '1'], { cwd: dir, env });
    expect(named.stderr).toContain('sample 1/1: x [1, 4]');
    expect(named.stdout).toMatch(/^ok: within tolerance/m);
    const positional = await run(process.execPath, [CLI, 'verify', 'out', '--against', 'long.onnx', '--batch', '5', '--samples', '1'], { cwd: dir, env });
    expect(positional.stderr).toContain('sample 1/1: x [5, 4]');
    const typo = await run(process.execPath, [CLI, 'decompose', modelPath, '--stages', '2', '--dim', 'bacth=1'], { cwd: dir, env })
      .then(() => ({ stderr: '' }), (e: { stderr: string }) => e);
    expect(typo.stderr).toContain("no input has a symbolic dim 'bacth' (did you mean 'batch'?)");
  });
});
