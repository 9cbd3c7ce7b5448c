import { describe, expect, it } from 'vitest';
import { createProgress, formatBytes } from '../../src/util/progress.js';

function sink(isTTY: boolean) {
  const chunks: string[] = [];
  return { chunks, stream: { isTTY, write: (c: string) => chunks.push(c) } };
}

describe('formatBytes', () => {
  it('uses binary units', () => {
    expect(formatBytes(512)).toBe('512 B');
    expect(formatBytes(1536)).toBe('1.5 KiB');
    expect(formatBytes(20 * 1024 * 1024)).toBe('20.0 MiB');
    expect(formatBytes(3 * 1024 ** 3)).toBe('3.0 GiB');
  });
});

describe('createProgress', () => {
  it('prints at most one line per 10% when the stream is not a terminal', () => {
    const { chunks, stream } = sink(false);
    const total = 10 * 1024 * 1024;
    const p = createProgress('push det.onnx', total, stream);
    for (let done = 0; done <= total; done += 64 * 1024) p.update(done);
    p.update(total);
    p.done();
    p.update(total); // ignored after done()

    const text = chunks.join('');
    const lines = text.trimEnd().split('\n');
    expect(lines.length).toBeLessThanOrEqual(11);
    expect(lines.length).toBeGreaterThanOrEqual(10);
    expect(text).not.toContain('\r');
    expect(lines[0]).toMatch(/^push det\.onnx\s+0% 0 B \/ 10\.0 MiB/);
    expect(lines.at(-1)).toMatch(/^push det\.onnx 100% 10\.0 MiB \/ 10\.0 MiB .* in \d+\.\d s$/);
    const pcts = lines.map((l) => Number(/(\d+)%/.exec(l)![1]));
    expect(pcts).toEqual([...pcts].sort((a, b) => a - b));
  });

  it('redraws one line in place on a terminal', () => {
    const { chunks, stream } = sink(true);
    const p = createProgress('pull', 2048, stream);
    p.update(1024);
    p.done();
    const text = chunks.join('');
    expect(text.startsWith('\rpull  50% 1.0 KiB / 2.0 KiB')).toBe(true);
    expect(text.split('\n')).toHaveLength(2); // one finished line
    expect(text).toMatch(/\rpull 100% 2\.0 KiB \/ 2\.0 KiB .*\x1b\[K in \d+\.\d s\n$/);
  });

  it('copes with an empty total', () => {
    const { chunks, stream } = sink(false);
    const p = createProgress('empty', 0, stream);
    p.update(0);
    p.done();
    expect(chunks.join('')).toMatch(/^empty 100% 0 B \/ 0 B .* in \d+\.\d s\n$/);
  });
});
