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
    if (process.env.ONNXRUNTIME_NODE_INSTALL !== 'skip') {
      // The stage functions install onnxruntime-node for Linux; its install script would otherwise download CUDA files.
      throw new Error('run the deploy with ONNXRUNTIME_NODE_INSTALL=skip (see docs/deploy.md)');
    }
    const { findManifests, loadManifest } = await import('./packages/core/src/manifest/load.js');
    const { planDeployment } = await import('./packages/core/src/deploy/plan.js');
    const { storage } = await import('./stacks/storage.js');
    const { stageFunctions } = await import('./stacks/stages.js');
    const { gateway } = await import('./stacks/gateway.js');

    // ENSEMBLE_PIPELINES=demo,ocr deploys a subset; default every models/*/pipeline.yaml.
    const only = (process.env.ENSEMBLE_PIPELINES ?? '').split(',').map((s) => s.trim()).filter(Boolean);
    const loaded = await Promise.allSettled((await findManifests('models')).map((file) => loadManifest(file)));
    const manifests = loaded.flatMap((r) => (r.status === 'fulfilled' ? [r.value] : []));
    const broken = loaded.flatMap((r) => (r.status === 'rejected' ? [r.reason as Error] : []));
    // A manifest that does not load only blocks a deploy of everything; a named subset goes ahead without it.
    if (broken.length && !only.length) throw broken[0];
    const selected = only.length ? manifests.filter((m) => only.includes(m.name)) : manifests;
    const missing = only.filter((n) => !manifests.some((m) => m.name === n));
    if (missing.length) {
      throw new Error(`ENSEMBLE_PIPELINES names pipelines that are not there or do not load: ${missing.join(', ')}${broken.length ? `\n${broken.map((e) => e.message).join('\n')}` : ''}`);
    }

    const plan = planDeployment(selected, { appName: $app.name, root: process.cwd() });
    for (const w of plan.warnings) console.warn(`warning: ${w}`);

    const store = storage(plan);
    const stages = stageFunctions(plan, store.components);
    const api = gateway(plan, store.components, stages);

    return {
      url: api.url,
      bucket: store.bucket.name,
      runsTable: store.table.name,
      stages: plan.stages.map((s) => `${s.pipeline}/${s.stage}`).join(', '),
    };
  },
});
