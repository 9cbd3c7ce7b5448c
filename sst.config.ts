/// <reference path="./.sst/platform/config.d.ts" />

// No top-level imports: SST loads this file before its platform is ready. Stacks are imported inside run().
export default $config({
  app(input) {
    return {
      name: 'ensemble',
      home: 'aws',
      removal: input?.stage === 'prod' ? 'retain' : 'remove',
      protect: input?.stage === 'prod',
    };
  },
  async run() {
    const { execFileSync } = await import('node:child_process');
    const { pipelinesFromEnv, selectDeployment, stageGlibcTunablesFromEnv, telemetryFromEnv } = await import('./packages/tools/src/deploy/select.js');
    const { storage } = await import('./stacks/storage.js');
    const { stageFunctions } = await import('./stacks/stages.js');
    const { gateway } = await import('./stacks/gateway.js');
    const { jobQueues, jobConsumers } = await import('./stacks/jobs.js');

    // ENSEMBLE_PIPELINES=demo,ocr deploys a subset; default every models/*/pipeline.yaml.
    const pipelines = pipelinesFromEnv();
    const { plan } = await selectDeployment({ root: process.cwd(), appName: $app.name, pipelines, stageGlibcTunables: stageGlibcTunablesFromEnv(), telemetry: telemetryFromEnv() });
    for (const w of plan.warnings) console.warn(`warning: ${w}`);

    // Every function is deployed from the folder `npm run package` builds (dist/lambda/<name>): build it
    // now, in a plain Node process, so what deploys is what the package test loads and runs.
    execFileSync('node', ['bin/ensemble.mjs', 'package', '--arch', plan.gateway.architecture, ...pipelines.flatMap((p) => ['--pipeline', p])], {
      stdio: 'inherit',
    });

    const store = storage(plan);
    const stages = stageFunctions(plan, store.components);
    jobQueues(plan, store.components);
    const api = gateway(plan, store.components, stages);
    jobConsumers(plan, store.components);

    return {
      url: api.url,
      bucket: store.bucket.name,
      runsTable: store.table.name,
      jobsTable: store.jobsTable.name,
      stages: plan.stages.map((s) => `${s.pipeline}/${s.stage}`).join(', '),
    };
  },
});
