import type { PermissionPlan, ResourceRef } from '../packages/tools/src/deploy/types.js';

/**
 * The plan names components by logical name; these helpers find the SST
 * component behind a name. Nothing is decided here.
 */
export type Linkable = sst.aws.Bucket | sst.aws.Dynamo | sst.aws.Function | sst.aws.Queue;

/** Logical name -> component, for everything a function's permissions or environment may name. */
export type Components = Map<string, Linkable>;

export function component(components: Components, name: string): Linkable {
  const c = components.get(name);
  if (!c) throw new Error(`the deployment plan refers to '${name}', which no stack created`);
  return c;
}

/**
 * The plan's IAM statements with ARNs for its logical names. Used instead of
 * `link`, which would grant every action on a linked component (s3:*,
 * dynamodb:*).
 */
export function permissions(components: Components, statements: PermissionPlan[]) {
  return statements.map((st) => ({ actions: st.actions, resources: st.resources.map((r) => arn(components, r)) }));
}

function arn(components: Components, r: ResourceRef): $util.Output<string> {
  if ('bucket' in r) {
    const bucket = component(components, r.bucket).arn;
    return 'listing' in r ? $interpolate`${bucket}` : $interpolate`${bucket}/${r.key}`;
  }
  if ('queue' in r) return $interpolate`${component(components, r.queue).arn}`;
  if ('table' in r) {
    const table = component(components, r.table).arn;
    return r.index === undefined ? $interpolate`${table}` : $interpolate`${table}/index/${r.index}`;
  }
  const fn = component(components, r.function).arn;
  return r.versions ? $interpolate`${fn}:*` : $interpolate`${fn}`;
}

/** Env var -> deployed name of the component the plan points it at. */
export function nameEnvironment(components: Components, nameEnv: Record<string, string>): Record<string, $util.Output<string>> {
  return Object.fromEntries(Object.entries(nameEnv).map(([variable, name]) => {
    const c = component(components, name);
    // A queue is found by the name its prefix gives it, not through a name variable.
    if (c instanceof sst.aws.Queue) throw new Error(`the deployment plan sets ${variable} to queue '${name}', which has no name variable`);
    return [variable, c.name];
  }));
}
