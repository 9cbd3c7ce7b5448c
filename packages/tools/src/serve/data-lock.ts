import { link, mkdir, readFile, rename, unlink, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { randomBytes } from 'node:crypto';
import { EnsembleError } from '@ensemble/core/errors.js';

/** In the data folder: which process serves it, and where (its gateway and its emulators). */
export const LOCK_FILE = 'server.lock';

export interface DataLockInfo {
  pid: number;
  /** Tells this lock from an earlier one of the same pid (a server restarted in one process). */
  id: string;
  startedAt: string;
  /** The gateway, once it listens: how the CLI finds the server on any port. */
  url?: string;
  s3Endpoint?: string;
  dynamoEndpoint?: string;
  sqsEndpoint?: string;
}

export class DataFolderInUseError extends EnsembleError {
  constructor(readonly dataDir: string, readonly holder: DataLockInfo) {
    super(`data folder ${dataDir} is in use by pid ${holder.pid}${holder.url ? ` (serving on ${holder.url})` : ''}`, 'not_ready');
  }
}

export interface DataLock {
  readonly info: DataLockInfo;
  /** Record more about this process (its URL once it listens). */
  update(patch: Partial<DataLockInfo>): Promise<void>;
  /** Remove the lock file, if it is still this process's. */
  release(): Promise<void>;
}

/**
 * The emulators keep one database per data folder and a second process on it
 * would fail deep inside dynalite ("Database is closed"): a process that
 * starts them takes this lock first, and another one is refused at once. The
 * lock is a file holding the pid, created with link(2) so exactly one of two
 * racing processes gets it; one left by a process that no longer runs is
 * taken over.
 */
export async function acquireDataLock(dataDir: string): Promise<DataLock> {
  const dir = resolve(dataDir);
  await mkdir(dir, { recursive: true });
  const file = join(dir, LOCK_FILE);
  const info: DataLockInfo = { pid: process.pid, id: randomBytes(8).toString('hex'), startedAt: new Date().toISOString() };
  for (let attempt = 0; attempt < 5; attempt++) {
    const tmp = `${file}.${process.pid}.${randomBytes(4).toString('hex')}`;
    await writeFile(tmp, JSON.stringify(info));
    try {
      await link(tmp, file);
      return lockHandle(file, info);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
    } finally {
      await unlink(tmp).catch(() => undefined);
    }
    const holder = await readLock(file);
    if (holder && isAlive(holder.pid)) throw new DataFolderInUseError(dir, holder);
    // Stale (its process is gone) or unreadable (a crash mid-write): remove it and try again.
    await unlink(file).catch(() => undefined);
  }
  throw new EnsembleError(`data folder ${dir}: could not take ${LOCK_FILE}; another process keeps replacing it`, 'not_ready');
}

/** The live process holding the data folder, if any. */
export async function dataFolderHolder(dataDir: string): Promise<DataLockInfo | undefined> {
  const holder = await readLock(join(resolve(dataDir), LOCK_FILE));
  return holder && isAlive(holder.pid) ? holder : undefined;
}

function lockHandle(file: string, info: DataLockInfo): DataLock {
  return {
    info,
    async update(patch) {
      Object.assign(info, patch);
      const tmp = `${file}.${process.pid}.${randomBytes(4).toString('hex')}`;
      await writeFile(tmp, JSON.stringify(info));
      await rename(tmp, file);
    },
    async release() {
      const holder = await readLock(file);
      if (holder?.id === info.id) await unlink(file).catch(() => undefined);
    },
  };
}

async function readLock(file: string): Promise<DataLockInfo | undefined> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw e;
  }
  try {
    const v = JSON.parse(text) as DataLockInfo;
    return Number.isInteger(v?.pid) && v.pid > 0 ? v : undefined;
  } catch {
    return undefined;
  }
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    // EPERM: it exists, as another user's process.
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}
