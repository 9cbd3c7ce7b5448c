/**
 * The plan names components by logical name; these helpers find the SST
 * component behind a name. Nothing is decided here.
 */
export type Linkable = sst.aws.Bucket | sst.aws.Dynamo | sst.aws.Function;

/** Logical name -> component, for everything a function may be linked to. */
export type Components = Map<string, Linkable>;

export function component(components: Components, name: string): Linkable {
  const c = components.get(name);
  if (!c) throw new Error(`the deployment plan refers to '${name}', which no stack created`);
  return c;
}

export function links(components: Components, names: string[]): Linkable[] {
  return names.map((n) => component(components, n));
}

/** Env var -> deployed name of the component the plan points it at. */
export function nameEnvironment(components: Components, nameEnv: Record<string, string>): Record<string, $util.Output<string>> {
  return Object.fromEntries(Object.entries(nameEnv).map(([variable, name]) => [variable, component(components, name).name]));
}
