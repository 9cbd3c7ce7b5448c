/** The ids the gateway gives runs: randomUUID()'s lowercase form, case aside. */
const RUN_ID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** Whether `id` could be a run id at all; anything else never reaches DynamoDB. */
export function isRunId(id: string): boolean {
  return RUN_ID.test(id);
}
