import type { Metric, Registry } from 'prom-client';

/** One labelled series of a BucketHistogram. */
export interface HistogramSeries {
  observe(value: number): void;
}

interface Series {
  labels: Record<string, string>;
  /** Observations per bucket (not cumulative); the last is +Inf. */
  counts: number[];
  sum: number;
  count: number;
}

/**
 * A Prometheus histogram whose bucket counts are plain numbers, written out
 * by prom-client's Registry (which asks a metric for get() only). prom-client's
 * own Histogram hashes the labels on every observe(), and the batch-size
 * histogram is observed on every batch of every stage.
 */
export class BucketHistogram {
  readonly type = 'histogram';
  readonly aggregator = 'sum';
  private readonly series: Series[] = [];

  constructor(readonly name: string, readonly help: string, private readonly buckets: readonly number[], registry: Registry) {
    registry.registerMetric(this as unknown as Metric);
  }

  /** The series of `labels`; keep it, each call makes a new one. */
  labels(labels: Record<string, string>): HistogramSeries {
    const s: Series = { labels, counts: new Array<number>(this.buckets.length + 1).fill(0), sum: 0, count: 0 };
    this.series.push(s);
    const buckets = this.buckets;
    return {
      observe(value: number) {
        let i = 0;
        while (i < buckets.length && value > buckets[i]) i++;
        s.counts[i]++;
        s.sum += value;
        s.count++;
      },
    };
  }

  /** What prom-client's Registry renders: cumulative `_bucket` series with `le`, then `_sum` and `_count`. */
  get(): { name: string; help: string; type: string; aggregator: string; values: { labels: Record<string, string | number>; value: number; metricName: string }[] } {
    const values: { labels: Record<string, string | number>; value: number; metricName: string }[] = [];
    for (const s of this.series) {
      let cumulative = 0;
      s.counts.forEach((n, i) => {
        cumulative += n;
        values.push({ labels: { ...s.labels, le: i < this.buckets.length ? this.buckets[i] : '+Inf' }, value: cumulative, metricName: `${this.name}_bucket` });
      });
      values.push({ labels: s.labels, value: s.sum, metricName: `${this.name}_sum` });
      values.push({ labels: s.labels, value: s.count, metricName: `${this.name}_count` });
    }
    return { name: this.name, help: this.help, type: this.type, aggregator: this.aggregator, values };
  }

  /** Registry.resetMetrics(): every series back to zero. */
  reset(): void {
    for (const s of this.series) { s.counts.fill(0); s.sum = 0; s.count = 0; }
  }
}
