import type { Manifest } from '../manifest/types.js';
import type { StageHealth, StageTransport } from '../transport/types.js';
import { Executor } from '../executor/executor.js';
import { SyncActivity } from '../executor/activity.js';
import { observers, type LoadedObserver, type Observer } from '../observability/events.js';
import { createMonitors, type PipelineMonitors } from '../monitors/pipeline-monitors.js';
import { closeObservers, loadObservers } from './observers.js';
import { NotFoundError, NotReadyError, NotServingError } from '../errors.js';
import { duplicatePipeline } from './load-all.js';

export interface LoadedPipeline {
  manifest: Manifest;
  executor: Executor;
  /**
   * What the transport knows this loaded version by: the pipeline's name for
   * its first load, `<name>#<n>` for the n-th (a name never holds '#'), so
   * a reload's new version and the old one it replaces, both loaded for a
   * while, each reach their own stages.
   */
  address: string;
  /** The manifest's monitors and their drift state (absent: it declares none). */
  monitors?: PipelineMonitors;
  /** The observer modules the manifest names, as one (absent: none); the registry's own observer is not in it. */
  observer?: Observer;
}

/** One loaded version: requests using it are counted, so it closes only once they are done. */
interface Version extends LoadedPipeline {
  observerModules: LoadedObserver[];
  users: number;
  idle?: () => void;
}

interface Entry {
  /** Absent when the manifest itself could not be read. */
  manifest?: Manifest;
  serving?: Version;
  failure?: string;
  unloaded?: boolean;
  /** Loads and unloads of one name run one after the other. */
  queue: Promise<unknown>;
  /** How many versions of it were loaded so far (each gets its own address). */
  loads: number;
}

export interface RepositoryEntry {
  name: string;
  version: string;
  state: 'READY' | 'UNAVAILABLE';
  reason: string;
}

/**
 * The pipelines a gateway serves, by name (and version). A pipeline is
 * registered as soon as its manifest is known and becomes ready once its
 * stages are loaded, so health checks can tell "loading" from "unknown".
 *
 * Every pipeline runs on one transport, so identical stages of different
 * pipelines can share its workers. A reload loads the new version into it
 * next to the old one (unchanged stages join the old version's pools, changed
 * ones start their own), moves traffic, and once the old version's requests
 * are done unloads exactly that version: pools still used by the new
 * version or another pipeline stay.
 */
export class PipelineRegistry {
  private readonly entries = new Map<string, Entry>();
  private closed = false;

  /** Told of every request's and batch's events (statistics, metrics); set before pipelines are added. */
  observer?: Observer;
  /** Synchronous runs in flight in every pipeline here: batch jobs take fewer items while there are any. */
  readonly activity = new SyncActivity();

  /** `transport` is the registry's: close() closes it. */
  constructor(readonly transport: StageTransport, opts: { observer?: Observer } = {}) {
    this.observer = opts.observer;
  }

  /** Refuses a second manifest of a name: replacing the first would leave its stages running, unclosed. */
  async add(manifest: Manifest): Promise<LoadedPipeline> {
    const e = this.entry(manifest.name);
    if (e.manifest) throw duplicatePipeline(e.manifest, manifest);
    e.manifest = manifest;
    return this.serialized(e, () => this.start(e, manifest));
  }

  /**
   * Load `manifest` and move its traffic to it; the version it replaces
   * closes once its requests are done. If the new version fails to load, the
   * old one keeps serving and the error is thrown. `serving` is called at the
   * moment traffic moves to it, before the old version's requests are done.
   */
  async reload(manifest: Manifest, opts: { serving?: () => void } = {}): Promise<LoadedPipeline> {
    const e = this.entry(manifest.name);
    return this.serialized(e, () => this.start(e, manifest, opts.serving));
  }

  /** Stop serving `name`: known still, its requests answer 503 until it is loaded again. */
  async unload(name: string): Promise<void> {
    const e = this.entries.get(name);
    if (!e) throw new NotFoundError(`unknown model '${name}'`);
    await this.serialized(e, async () => {
      const old = e.serving;
      e.serving = undefined;
      e.unloaded = true;
      if (old) await this.retire(old);
    });
  }

  /**
   * Serve `manifest` as failed: known, so its routes answer 503 with the
   * reason instead of 404, but not loaded (its weights could not be fetched).
   */
  fail(manifest: Manifest, error: unknown): void {
    const e = this.entry(manifest.name);
    if (e.manifest && e.manifest !== manifest) throw duplicatePipeline(e.manifest, manifest);
    e.manifest = manifest;
    e.failure = message(error);
  }

  /**
   * A load that failed before the registry saw it (a manifest that does not
   * read, weights that do not verify): a version serving keeps serving; with
   * none, the name answers 503 with the reason.
   */
  loadFailed(name: string, error: unknown, manifest?: Manifest): void {
    const e = this.entry(name);
    if (e.serving) return;
    if (manifest) e.manifest = manifest;
    e.failure = message(error);
    e.unloaded = false;
  }

  names(): string[] { return [...this.entries.keys()].sort(); }

  /** The manifest of a known name, if it could be read; 404 for an unknown name or a version not served. */
  known(name: string, version?: string): Manifest | undefined {
    const e = this.entries.get(name);
    if (!e) throw new NotFoundError(`unknown model '${name}'`);
    const m = e.manifest;
    if (m && version !== undefined && version !== m.version) {
      throw new NotFoundError(`model '${name}' has no version '${version}' (serving version '${m.version}')`);
    }
    return m;
  }

  /** The manifest, or 404 (unknown) / 503 (its manifest could not be read). */
  manifest(name: string, version?: string): Manifest {
    const m = this.known(name, version);
    if (!m) throw new NotServingError(`model '${name}' failed to load: ${this.entries.get(name)?.failure ?? 'no manifest'}`);
    return m;
  }

  /** The loaded pipeline, or 404 (unknown) / 503 (still loading, failed to load, unloaded). */
  get(name: string, version?: string): LoadedPipeline {
    this.known(name, version);
    const e = this.entries.get(name)!;
    if (!e.serving) throw new NotServingError(`model '${name}' ${this.notServing(e)}`);
    return e.serving;
  }

  /**
   * Run `fn` with the version serving now. A reload or unload meanwhile does
   * not close that version under it: the old version closes once every such
   * call is done.
   */
  async use<T>(name: string, version: string | undefined, fn: (p: LoadedPipeline) => Promise<T>): Promise<T> {
    const v = this.get(name, version) as Version;
    v.users++;
    try {
      return await fn(v);
    } finally {
      if (--v.users === 0) v.idle?.();
    }
  }

  /** Loaded, and every stage able to take batches now (a stage whose workers cannot start is not). */
  isReady(name: string): boolean {
    return this.entries.get(name)?.serving !== undefined && this.stageHealth(name).every((h) => h.ready);
  }
  /** Known, and not serving because its manifest, weights or stages failed to load (not unloaded, not still loading). */
  failedToLoad(name: string): boolean {
    const e = this.entries.get(name);
    return e !== undefined && !e.serving && !e.unloaded && e.failure !== undefined;
  }

  /**
   * The server's readiness: every pipeline ready, but for those unloaded on purpose (Triton's server is ready
   * with a model unloaded through the repository API; one that failed to load still makes it not ready).
   */
  allReady(): boolean { return this.names().every((n) => this.entries.get(n)!.unloaded === true || this.isReady(n)); }

  /** What keeps a known pipeline from serving: why it failed to load, and which stages are down and why. */
  status(name: string): { ready: boolean; reason?: string; stages: StageHealth[] } {
    const e = this.entries.get(name);
    const stages = this.stageHealth(name);
    const out: { ready: boolean; reason?: string; stages: StageHealth[] } = { ready: this.isReady(name), stages };
    if (!e?.serving) out.reason = e ? this.notServing(e) : 'unknown';
    else {
      const down = stages.filter((h) => !h.ready);
      if (down.length) out.reason = down.map((h) => `stage '${h.stage}' is down: ${h.reason ?? 'not ready'}`).join('; ');
    }
    return out;
  }

  /** The model repository index: every known name, READY or UNAVAILABLE with why. */
  index(): RepositoryEntry[] {
    return this.names().map((name) => {
      const s = this.status(name);
      return { name, version: this.entries.get(name)?.manifest?.version ?? '', state: s.ready ? 'READY' : 'UNAVAILABLE', reason: s.reason ?? '' };
    });
  }

  /** The transport a pipeline's stages run on, with the address its version serving now has there; undefined if it is not loaded. */
  transportOf(name: string): { transport: StageTransport; address: string } | undefined {
    const v = this.entries.get(name)?.serving;
    return v ? { transport: this.transport, address: v.address } : undefined;
  }

  async close(): Promise<void> {
    this.closed = true;
    await Promise.all([...this.entries.values()].map(async (e) => {
      await e.queue.catch(() => undefined);
      const v = e.serving;
      e.serving = undefined;
      if (v) await this.retire(v);
    }));
    await this.transport.close();
  }

  private entry(name: string): Entry {
    let e = this.entries.get(name);
    if (!e) this.entries.set(name, e = { queue: Promise.resolve(), loads: 0 });
    return e;
  }

  private serialized<T>(e: Entry, fn: () => Promise<T>): Promise<T> {
    const run = e.queue.catch(() => undefined).then(fn);
    e.queue = run;
    return run;
  }

  private async start(e: Entry, manifest: Manifest, serving?: () => void): Promise<LoadedPipeline> {
    if (this.closed) throw new NotReadyError(`model '${manifest.name}': the server is shutting down`);
    e.loads++;
    const address = e.loads === 1 ? manifest.name : `${manifest.name}#${e.loads}`;
    let executor: Executor;
    let modules: LoadedObserver[] = [];
    try {
      modules = await loadObservers(manifest.observers ?? [], { pipeline: manifest.name, version: manifest.version, dir: manifest.dir });
      executor = await Executor.create(manifest, this.transport, {
        address, observer: modules.length ? observers([this.observer, ...modules]) : this.observer, activity: this.activity,
      });
    } catch (err) {
      await closeObservers(modules);
      // What this version had started (a pool for a changed stage) goes; pools the serving version uses stay.
      await this.transport.unload?.(address).catch(() => undefined);
      if (!e.serving) { e.failure = message(err); e.manifest = manifest; e.unloaded = false; }
      throw err;
    }
    const old = e.serving;
    const v: Version = {
      manifest, executor, address, users: 0, observerModules: modules,
      monitors: createMonitors(manifest), observer: observers(modules),
    };
    e.manifest = manifest;
    serving?.();
    e.serving = v;
    e.failure = undefined;
    e.unloaded = false;
    if (old) await this.retire(old);
    return v;
  }

  /** Close a version nobody reaches any more, once the requests still using it are done, and release its stages. */
  private async retire(v: Version): Promise<void> {
    if (v.users > 0) await new Promise<void>((r) => { v.idle = r; });
    await v.executor.close();
    await closeObservers(v.observerModules);
    await this.transport.unload?.(v.address);
  }

  private notServing(e: Entry): string {
    if (e.unloaded) return 'unloaded';
    if (e.failure !== undefined) return `failed to load: ${e.failure}`;
    return 'still loading';
  }

  private stageHealth(name: string): StageHealth[] {
    const v = this.entries.get(name)?.serving;
    return v ? this.transport.health?.(v.address) ?? [] : [];
  }
}

function message(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}
