// Every request the console makes goes through here, so the API key (if one
// was given) rides on each of them as the gateway expects it: x-api-key.

const KEY = 'ensemble.apiKey';

/** The API key this tab uses ('' for none): kept in sessionStorage, so it dies with the tab. */
export function apiKey() {
  return sessionStorage.getItem(KEY) ?? '';
}

/** @param {string} key */
export function setApiKey(key) {
  if (key) sessionStorage.setItem(KEY, key);
  else sessionStorage.removeItem(KEY);
}

export class HttpError extends Error {
  /** @param {number} status @param {string} message */
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

/**
 * fetch() with the API key; a 401 or 403 is announced (the header asks for a
 * key) and still returned to the caller.
 * @param {string} path
 * @param {RequestInit} [init]
 */
export async function request(path, init = {}) {
  const headers = new Headers(init.headers);
  const key = apiKey();
  if (key) headers.set('x-api-key', key);
  const res = await fetch(path, { ...init, headers });
  if (res.status === 401 || res.status === 403) window.dispatchEvent(new CustomEvent('ensemble:unauthorized', { detail: res.status }));
  return res;
}

/**
 * The JSON body of a GET; an HttpError carrying the gateway's `error` text otherwise.
 * @param {string} path
 * @returns {Promise<any>}
 */
export async function getJson(path) {
  const res = await request(path);
  const body = await res.json().catch(() => ({}));
  if (!res.ok) throw new HttpError(res.status, body.error ?? `${res.status} ${res.statusText}`);
  return body;
}

/** @param {string} s */
export const enc = encodeURIComponent;
