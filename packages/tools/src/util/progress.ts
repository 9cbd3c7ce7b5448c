export interface Progress {
  /** Bytes (or units) done so far, out of the total given at creation. */
  update(done: number): void;
  /** Finish the line; further updates are ignored. */
  done(): void;
}

interface ProgressStream {
  write(chunk: string): unknown;
  isTTY?: boolean;
  columns?: number;
}

const UNITS = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
/** A terminal redraws at most this often; faster only burns CPU on escape codes. */
const TTY_REDRAW_MS = 100;

export function formatBytes(n: number): string {
  let v = n;
  let u = 0;
  while (Math.abs(v) >= 1024 && u < UNITS.length - 1) {
    v /= 1024;
    u++;
  }
  return u === 0 ? `${v} ${UNITS[0]}` : `${v.toFixed(1)} ${UNITS[u]}`;
}

/**
 * One line of progress for long CLI work: redrawn in place on a terminal,
 * one line per 10% step otherwise so CI logs stay short.
 */
export function createProgress(label: string, total: number, stream: ProgressStream = process.stderr): Progress {
  const tty = stream.isTTY === true;
  const started = Date.now();
  let current = 0;
  let lastDraw = 0;
  let lastDecile = -1;
  let finished = false;

  const line = (): string => {
    const seconds = (Date.now() - started) / 1000;
    const pct = total > 0 ? Math.min(100, Math.floor((current / total) * 100)) : 100;
    const rate = seconds > 0 ? `${formatBytes(Math.round(current / seconds))}/s` : '-';
    return `${label} ${String(pct).padStart(3)}% ${formatBytes(current)} / ${formatBytes(total)} ${rate}`;
  };

  const draw = (): void => {
    let text = line();
    if (stream.columns && text.length >= stream.columns) text = text.slice(0, stream.columns - 1);
    // \x1b[K clears what a longer previous line left behind.
    stream.write(`\r${text}\x1b[K`);
  };

  return {
    update(done: number) {
      if (finished) return;
      current = Math.max(0, done);
      if (tty) {
        const now = Date.now();
        if (now - lastDraw >= TTY_REDRAW_MS) {
          lastDraw = now;
          draw();
        }
        return;
      }
      const decile = total > 0 ? Math.min(10, Math.floor((current / total) * 10)) : 10;
      // The 100% line belongs to done(), which also prints the elapsed time.
      if (decile > lastDecile && decile < 10) {
        lastDecile = decile;
        stream.write(`${line()}\n`);
      }
    },
    done() {
      if (finished) return;
      finished = true;
      current = Math.max(current, total);
      const seconds = ((Date.now() - started) / 1000).toFixed(1);
      if (tty) {
        draw();
        stream.write(` in ${seconds} s\n`);
      } else {
        stream.write(`${line()} in ${seconds} s\n`);
      }
    },
  };
}
