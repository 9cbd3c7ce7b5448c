import type { JobStatus, ResultLine } from '../../packages/core/src/jobs/types.js';

/** POST a job; the answer's status and body. */
export async function submitJob(url: string, pipeline: string, body: unknown): Promise<{ status: number; json: JobStatus & { error?: string } }> {
  const res = await fetch(`${url}/v2/models/${pipeline}/jobs`, { method: 'POST', body: JSON.stringify(body), headers: { 'content-type': 'application/json' } });
  return { status: res.status, json: (await res.json()) as JobStatus & { error?: string } };
}

export async function jobStatus(url: string, id: string): Promise<JobStatus> {
  const res = await fetch(`${url}/v2/jobs/${id}`);
  if (res.status !== 200) throw new Error(`GET /v2/jobs/${id}: ${res.status} ${await res.text()}`);
  return (await res.json()) as JobStatus;
}

/** Poll until `done(status)` holds (bounded: the test's own timeout ends it otherwise). */
export async function waitForJob(url: string, id: string, done: (s: JobStatus) => boolean = (s) => ['succeeded', 'failed', 'cancelled'].includes(s.state), timeoutMs = 120_000): Promise<JobStatus> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const s = await jobStatus(url, id);
    if (done(s)) return s;
    if (Date.now() > end) throw new Error(`job ${id} still ${JSON.stringify(s)} after ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

export async function jobResults(url: string, id: string): Promise<ResultLine[]> {
  const res = await fetch(`${url}/v2/jobs/${id}/results`);
  if (res.status !== 200) throw new Error(`results: ${res.status} ${await res.text()}`);
  return (await res.text()).split('\n').filter(Boolean).map((l) => JSON.parse(l) as ResultLine);
}
