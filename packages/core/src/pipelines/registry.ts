import type { Manifest } from '../manifest/types.js';
import type { StageHealth, StageTransport } from '../transport/types.js';
import { Executor } from '../executor/executor.js';
import { NotFoundError, NotReadyError } from '../errors.js';
import { duplicatePipeline } from './load-all.js';

export interface LoadedPipeline {
  manifest: Manifest;
  executor: Executor;
}

/**
 * The pipelines a gateway serves, by name (and version). A pipeline is
 * registered as soon as its manifest is known and becomes ready once its
 * stages are loaded, so health checks can tell "loading" from "unknown".
 */
export class PipelineRegistry {
  private readonly loaded = new Map<string, LoadedPipeline>();
  private readonly known = new Map<string, Manifest>();
  private readonly failures = new Map<string, string>();

  constructor(readonly transport: StageTransport) {}

  /** Refuses a second manifest of a name: replacing the first would leave its stages running, unclosed. */
  async add(manifest: Manifest): Promise<LoadedPipeline> {
    const first = this.known.get(manifest.name);
    if (first) throw duplicatePipeline(first, manifest);
    this.known.set(manifest.name, manifest);
    try {
      const executor = await Executor.create(manifest, this.transport);
      const p = { manifest, executor };
      this.loaded.set(manifest.name, p);
      return p;
    } catch (e) {
      this.failures.set(manifest.name, e instanceof Error ? e.message : String(e));
      throw e;
    }
  }

  /**
   * Serve `manifest` as failed: known, so its routes answer 503 with the
   * reason instead of 404, but not loaded (its weights could not be fetched).
   */
  fail(manifest: Manifest, error: unknown): void {
    const first = this.known.get(manifest.name);
    if (first && first !== manifest) throw duplicatePipeline(first, manifest);
    this.known.set(manifest.name, manifest);
    this.failures.set(manifest.name, error instanceof Error ? error.message : String(error));
  }

  names(): string[] { return [...this.known.keys()].sort(); }

  manifest(name: string, version?: string): Manifest {
    const m = this.known.get(name);
    if (!m) throw new NotFoundError(`unknown model '${name}'`);
    if (version !== undefined && version !== m.version) {
      throw new NotFoundError(`model '${name}' has no version '${version}' (serving version '${m.version}')`);
    }
    return m;
  }

  /** The loaded pipeline, or 404 (unknown) / 503 (still loading or failed to load). */
  get(name: string, version?: string): LoadedPipeline {
    this.manifest(name, version);
    const p = this.loaded.get(name);
    if (!p) {
      const why = this.failures.get(name);
      throw new NotReadyError(why ? `model '${name}' failed to load: ${why}` : `model '${name}' is still loading`);
    }
    return p;
  }

  /** Loaded, and every stage able to take batches now (a stage whose workers cannot start is not). */
  isReady(name: string): boolean {
    return this.loaded.has(name) && this.stageHealth(name).every((h) => h.ready);
  }
  allReady(): boolean { return this.names().every((n) => this.isReady(n)); }

  /** What keeps a known pipeline from serving: why it failed to load, and which stages are down and why. */
  status(name: string): { ready: boolean; reason?: string; stages: StageHealth[] } {
    const stages = this.stageHealth(name);
    const out: { ready: boolean; reason?: string; stages: StageHealth[] } = { ready: this.isReady(name), stages };
    const why = this.failures.get(name);
    if (why !== undefined && !this.loaded.has(name)) out.reason = `failed to load: ${why}`;
    else if (!this.loaded.has(name)) out.reason = 'still loading';
    else {
      const down = stages.filter((h) => !h.ready);
      if (down.length) out.reason = down.map((h) => `stage '${h.stage}' is down: ${h.reason ?? 'not ready'}`).join('; ');
    }
    return out;
  }

  private stageHealth(name: string): StageHealth[] {
    return this.loaded.has(name) ? this.transport.health?.(name) ?? [] : [];
  }

  async close(): Promise<void> {
    await Promise.all([...this.loaded.values()].map((p) => p.executor.close()));
    await this.transport.close();
  }
}
