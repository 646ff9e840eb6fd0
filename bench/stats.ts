// Small statistics helpers shared by the bench: exact percentiles over recorded samples, and the
// per-stage figures read back from the service's own Prometheus histograms.
import type { Histogram } from "prom-client";

/** Nearest-rank percentile of `sorted` (ascending), `p` in [0, 100]. */
export function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return NaN;
  const rank = Math.min(sorted.length, Math.max(1, Math.ceil((p / 100) * sorted.length)));
  return sorted[rank - 1];
}

export interface Summary {
  count: number;
  mean_ms: number;
  p50_ms: number;
  p95_ms: number;
  p99_ms: number;
  max_ms: number;
}

export function summarize(samplesMs: number[]): Summary {
  const sorted = [...samplesMs].sort((a, b) => a - b);
  const sum = sorted.reduce((a, b) => a + b, 0);
  return {
    count: sorted.length,
    mean_ms: round(sum / Math.max(1, sorted.length)),
    p50_ms: round(percentile(sorted, 50)),
    p95_ms: round(percentile(sorted, 95)),
    p99_ms: round(percentile(sorted, 99)),
    max_ms: round(sorted[sorted.length - 1] ?? NaN),
  };
}

export function round(v: number, digits = 2): number {
  if (!Number.isFinite(v)) return v;
  const f = 10 ** digits;
  return Math.round(v * f) / f;
}

export interface StageFigures {
  count: number;
  mean_ms: number;
  /** Upper bound of the histogram bucket that holds the 50th / 99th percentile. */
  p50_le_ms: number;
  p99_le_ms: number;
  /** Time spent in this stage summed over all requests, in ms per transaction. */
  total_s: number;
}

/**
 * Reads a labelled prom-client histogram (e.g. intents_submit_stage_duration_seconds{stage}) into
 * per-label figures. Percentiles are bucket bounds (the histogram does not keep samples).
 */
export async function histogramByLabel(h: Histogram<string>, label: string): Promise<Record<string, StageFigures>> {
  const { values } = await h.get();
  const byKey = new Map<string, { buckets: Array<[number, number]>; sum: number; count: number }>();
  for (const v of values) {
    const key = String(v.labels[label] ?? "");
    const entry = byKey.get(key) ?? { buckets: [], sum: 0, count: 0 };
    if (v.metricName?.endsWith("_bucket")) entry.buckets.push([v.labels.le === "+Inf" ? Infinity : Number(v.labels.le), v.value]);
    else if (v.metricName?.endsWith("_sum")) entry.sum = v.value;
    else if (v.metricName?.endsWith("_count")) entry.count = v.value;
    byKey.set(key, entry);
  }
  const out: Record<string, StageFigures> = {};
  for (const [key, e] of byKey) {
    if (e.count === 0) continue;
    e.buckets.sort((a, b) => a[0] - b[0]);
    const q = (p: number) => {
      const want = (p / 100) * e.count;
      for (const [le, n] of e.buckets) if (n >= want) return le * 1000;
      return Infinity;
    };
    out[key] = {
      count: e.count,
      mean_ms: round((e.sum / e.count) * 1000, 3),
      p50_le_ms: q(50),
      p99_le_ms: q(99),
      total_s: round(e.sum, 3),
    };
  }
  return out;
}
