import type { DeploymentPlan } from '../packages/tools/src/deploy/types.js';
import type { Components } from './wiring.js';

/**
 * The weights bucket (private: no public access, no CORS), the runs table and the jobs table,
 * as the plan describes them. The bucket's lifecycle rules expire stage
 * payloads parked under `spill/` that a crashed reader did not delete.
 */
export function storage(plan: DeploymentPlan) {
  const bucket = new sst.aws.Bucket(plan.bucket.name, {
    cors: false,
    lifecycle: plan.bucket.lifecycle.map((rule) => ({
      id: `expire-${rule.prefix.replace(/[^A-Za-z0-9-]/g, '')}`,
      prefix: rule.prefix,
      expiresIn: `${rule.expireDays} ${rule.expireDays === 1 ? 'day' : 'days'}` as const,
    })),
  });
  const table = new sst.aws.Dynamo(plan.table.name, {
    fields: plan.table.fields,
    primaryIndex: plan.table.primaryIndex,
    globalIndexes: plan.table.globalIndexes,
    ttl: plan.table.ttl,
  });
  // Batch jobs: one row per job and one per item; items are kept (the results are read from them).
  const jobsTable = new sst.aws.Dynamo(plan.jobs.table.name, {
    fields: plan.jobs.table.fields,
    primaryIndex: plan.jobs.table.primaryIndex,
  });
  const components: Components = new Map<string, sst.aws.Bucket | sst.aws.Dynamo>([
    [plan.bucket.name, bucket],
    [plan.table.name, table],
    [plan.jobs.table.name, jobsTable],
  ]);
  return { bucket, table, jobsTable, components };
}
