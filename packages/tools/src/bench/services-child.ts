import { startLocalServices } from '../local/local-services.js';

/**
 * s3rver, dynalite and fauxqs in their own process for the benchmark (see
 * startBenchServer): on AWS, S3, DynamoDB and SQS are not in the gateway's process
 * either, so their CPU should not be billed to its event loop.
 */
if (!process.send) throw new Error('services-child must be started with an IPC channel (child_process.fork)');
const dataDir = process.argv[2];
if (!dataDir) throw new Error('services-child: data folder argument missing');
const services = await startLocalServices({ dataDir });
let closing = false;
const stop = () => {
  if (closing) return;
  closing = true;
  services.close().finally(() => process.exit(0));
};
process.on('disconnect', stop);
process.on('message', (m: { type: 'close' }) => { if (m.type === 'close') stop(); });
process.send({ type: 'ready', s3Endpoint: services.s3Endpoint, dynamoEndpoint: services.dynamoEndpoint, sqsEndpoint: services.sqsEndpoint });
