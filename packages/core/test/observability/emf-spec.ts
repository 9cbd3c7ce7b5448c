/**
 * The rules of CloudWatch's Embedded Metric Format specification
 * (CloudWatch_Embedded_Metric_Format_Specification) a log line must keep for
 * CloudWatch Logs to extract its metrics: returns what breaks them, [] for a
 * valid line.
 */
export const EMF_UNITS: ReadonlySet<string> = new Set([
  'Seconds', 'Microseconds', 'Milliseconds', 'Bytes', 'Kilobytes', 'Megabytes', 'Gigabytes', 'Terabytes', 'Bits',
  'Kilobits', 'Megabits', 'Gigabits', 'Terabits', 'Percent', 'Count', 'Bytes/Second', 'Kilobytes/Second',
  'Megabytes/Second', 'Gigabytes/Second', 'Terabytes/Second', 'Bits/Second', 'Kilobits/Second', 'Megabits/Second',
  'Gigabits/Second', 'Terabits/Second', 'Count/Second', 'None',
]);

export interface EmfDirective {
  Namespace: string;
  Dimensions: string[][];
  Metrics: { Name: string; Unit?: string; StorageResolution?: number }[];
}

export function emfViolations(line: string): string[] {
  const bad: string[] = [];
  let doc: Record<string, unknown>;
  try {
    // The whole log event must be the JSON object, nothing before or after it.
    doc = JSON.parse(line) as Record<string, unknown>;
  } catch {
    return ['not a JSON object'];
  }
  if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) return ['not a JSON object'];
  const aws = doc._aws as { Timestamp?: unknown; CloudWatchMetrics?: unknown } | undefined;
  if (typeof aws !== 'object' || aws === null) return ['no _aws metadata object'];
  if (typeof aws.Timestamp !== 'number' || !Number.isInteger(aws.Timestamp) || aws.Timestamp < 1e12) bad.push('_aws.Timestamp is not epoch milliseconds');
  if (!Array.isArray(aws.CloudWatchMetrics) || aws.CloudWatchMetrics.length === 0) return [...bad, '_aws.CloudWatchMetrics is not a non-empty array'];
  for (const d of aws.CloudWatchMetrics as EmfDirective[]) {
    if (typeof d.Namespace !== 'string' || d.Namespace.length < 1 || d.Namespace.length > 255) bad.push(`bad Namespace ${JSON.stringify(d.Namespace)}`);
    if (!Array.isArray(d.Dimensions)) bad.push('Dimensions is not an array');
    for (const set of d.Dimensions ?? []) {
      if (!Array.isArray(set) || set.length > 30) bad.push(`a dimension set of more than 30 dimensions: ${JSON.stringify(set)}`);
      for (const name of set) {
        const v = doc[name];
        if (typeof v !== 'string' || v.trim() === '' || v.length > 1024) bad.push(`dimension '${name}' has no string value on the root`);
      }
    }
    if (!Array.isArray(d.Metrics) || d.Metrics.length > 100) bad.push('Metrics is not an array of at most 100');
    for (const m of d.Metrics ?? []) {
      if (typeof m.Name !== 'string' || m.Name.length < 1 || m.Name.length > 255) bad.push(`bad metric Name ${JSON.stringify(m.Name)}`);
      if (m.Unit !== undefined && !EMF_UNITS.has(m.Unit)) bad.push(`metric '${m.Name}': unit '${m.Unit}' is not a CloudWatch unit`);
      if (m.StorageResolution !== undefined && m.StorageResolution !== 1 && m.StorageResolution !== 60) bad.push(`metric '${m.Name}': StorageResolution`);
      const v = doc[m.Name];
      const values = Array.isArray(v) ? v : [v];
      if (values.length === 0 || values.length > 100) bad.push(`metric '${m.Name}' has ${values.length} values (1 to 100)`);
      if (!values.every((x) => typeof x === 'number' && Number.isFinite(x))) bad.push(`metric '${m.Name}' is not a number or an array of numbers`);
    }
  }
  return bad;
}

/** The directive of a valid line, and its members. */
export function emfDocument(line: string): { directive: EmfDirective; members: Record<string, unknown> } {
  const doc = JSON.parse(line) as Record<string, unknown> & { _aws: { CloudWatchMetrics: EmfDirective[] } };
  return { directive: doc._aws.CloudWatchMetrics[0], members: doc };
}
