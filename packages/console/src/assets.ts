import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';

/** The console's static files: one HTML page, its stylesheet and its ES modules, served as they are. */
export const STATIC_DIR = fileURLToPath(new URL('../static/', import.meta.url));

/** The only names an asset request may ask for: flat, lowercase, no path. */
export const ASSET_NAME = /^[a-z0-9][a-z0-9-]*\.(js|css|svg)$/;

const TYPES: Record<string, string> = {
  html: 'text/html; charset=utf-8',
  js: 'text/javascript; charset=utf-8',
  css: 'text/css; charset=utf-8',
  svg: 'image/svg+xml',
};

export interface Asset {
  body: string;
  type: string;
}

/**
 * Reads assets from `dir`, once each: they do not change while a server
 * runs (an edit to the console shows after a restart).
 */
export function assetReader(dir: string = STATIC_DIR): (name: string) => Promise<Asset | undefined> {
  const cache = new Map<string, Promise<Asset | undefined>>();
  return (name) => {
    if (name !== 'index.html' && !ASSET_NAME.test(name)) return Promise.resolve(undefined);
    let hit = cache.get(name);
    if (!hit) {
      const ext = name.slice(name.lastIndexOf('.') + 1);
      hit = readFile(new URL(name, `file://${dir.endsWith('/') ? dir : `${dir}/`}`), 'utf8').then(
        (body) => ({ body, type: TYPES[ext] ?? 'application/octet-stream' }),
        () => undefined,
      );
      cache.set(name, hit);
    }
    return hit;
  };
}
