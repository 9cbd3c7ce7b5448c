/**
 * A gateway's record path in a process of its own, for the journal test to
 * kill: journal records in argv[2] whose DynamoDB (argv[3]) does not answer,
 * say so on stdout once each put() has resolved, then wait to be killed.
 */
import { makeDynamoClient, settingsFromEnv, LOCAL_CREDENTIALS } from '../../src/storage/config.js';
import { DynamoRunStore } from '../../src/storage/dynamo-runs.js';
import { JournaledRunStore } from '../../src/storage/journal.js';

const [dir, endpoint, countArg] = process.argv.slice(2);
const dynamo = makeDynamoClient({ ...settingsFromEnv({}), dynamoEndpoint: endpoint, credentials: LOCAL_CREDENTIALS });
const sink = new DynamoRunStore({ dynamo, table: 'runs', onError: () => undefined });
const store = await JournaledRunStore.open({ dir, sink, log: () => undefined });
const count = Number(countArg);
for (let i = 0; i < count; i++) {
  // As a gateway's concurrent requests do: several records share each group commit.
  await Promise.all(Array.from({ length: 10 }, (_, j) => store.put({
    id: `killed-${i * 10 + j}`, pipeline: 'journal', version: '1', status: 'succeeded', httpStatus: 200,
    startedAt: new Date(Date.UTC(2025, 0, 1, 0, 0, 0, i * 10 + j)).toISOString(), durationMs: 1, stages: [],
  })));
  process.stdout.write(`committed ${(i + 1) * 10}\n`);
}
setInterval(() => undefined, 1_000);
