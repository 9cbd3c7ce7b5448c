// The console's URL is its state: every view has its own path, and the
// server answers the same page for each, so links and reloads land where they point.

/** @type {(path: string) => void} */
let go = (path) => { location.href = path; };

/** @param {(path: string) => void} fn */
export function setNavigator(fn) { go = fn; }

/** @param {string} path */
export function navigate(path) { go(path); }
