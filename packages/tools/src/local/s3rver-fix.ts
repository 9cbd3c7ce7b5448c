import { unlink } from 'node:fs/promises';
import { createRequire } from 'node:module';

interface FilesystemStore {
  getResourcePath(bucket: string, key: string, resource: string): string;
  deleteObject(bucket: string, key: string): Promise<void>;
}

let applied = false;

/**
 * s3rver's DeleteObject removes the key's folders once they are empty, while
 * a PutObject into the same folder may be between its mkdir and its open: the
 * write then fails with ENOENT as an uncaught exception (the PUT never
 * answers, and the hosting process can die). Seen with spilled Lambda payloads
 * (`spill/<date>/…`) written and deleted side by side. Real S3 has no folders,
 * so the emulator simply keeps them: only the object's own files are removed.
 */
export function keepS3rverFolders(): void {
  if (applied) return;
  applied = true;
  const require = createRequire(import.meta.url);
  const Store = require('s3rver/lib/stores/filesystem.js') as { prototype: FilesystemStore };
  Store.prototype.deleteObject = async function deleteObject(this: FilesystemStore, bucket: string, key: string): Promise<void> {
    await Promise.all(['object', 'object.md5', 'metadata.json'].map((r) =>
      unlink(this.getResourcePath(bucket, key, r)).catch((e: NodeJS.ErrnoException) => {
        if (e.code !== 'ENOENT') throw e;
      })));
  };
}
