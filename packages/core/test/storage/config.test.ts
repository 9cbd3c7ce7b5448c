import { describe, expect, it } from 'vitest';
import { LOCAL_CREDENTIALS, makeDynamoClient, makeS3Client, settingsFromEnv } from '../../src/storage/config.js';

describe('settingsFromEnv', () => {
  it('uses built-in names and the default provider chain when nothing is set', () => {
    expect(settingsFromEnv({})).toEqual({ region: 'us-east-1', bucket: 'ensemble-weights', runsTable: 'ensemble-runs' });
  });

  it('reads the ENSEMBLE_* variables and AWS_REGION over the defaults', () => {
    const s = settingsFromEnv(
      {
        ENSEMBLE_BUCKET: 'my-weights',
        ENSEMBLE_RUNS_TABLE: 'my-runs',
        AWS_REGION: 'eu-west-3',
        ENSEMBLE_S3_ENDPOINT: 'http://127.0.0.1:4568',
        ENSEMBLE_DYNAMODB_ENDPOINT: 'http://127.0.0.1:4567',
      },
      { bucket: 'other', runsTable: 'other', region: 'ap-south-1' },
    );
    expect(s).toEqual({
      region: 'eu-west-3',
      bucket: 'my-weights',
      runsTable: 'my-runs',
      s3Endpoint: 'http://127.0.0.1:4568',
      dynamoEndpoint: 'http://127.0.0.1:4567',
      credentials: LOCAL_CREDENTIALS,
    });
  });

  it('fills gaps from defaults and ignores blank variables', () => {
    const s = settingsFromEnv({ ENSEMBLE_BUCKET: '  ', AWS_DEFAULT_REGION: 'us-west-2' }, { bucket: 'b', runsTable: 't' });
    expect(s).toEqual({ region: 'us-west-2', bucket: 'b', runsTable: 't' });
  });

  it('reads where batch jobs live: their table, queue prefix and SQS endpoint', () => {
    const s = settingsFromEnv({ ENSEMBLE_JOBS_TABLE: 'jt', ENSEMBLE_JOBS_QUEUE_PREFIX: 'q-', ENSEMBLE_SQS_ENDPOINT: 'http://127.0.0.1:9324' });
    expect(s).toMatchObject({ jobsTable: 'jt', jobsQueuePrefix: 'q-', sqsEndpoint: 'http://127.0.0.1:9324', credentials: LOCAL_CREDENTIALS });
  });

  it('prefers keys from the environment, even with an endpoint', () => {
    const s = settingsFromEnv({ ENSEMBLE_S3_ENDPOINT: 'http://localhost:9000', AWS_ACCESS_KEY_ID: 'AK', AWS_SECRET_ACCESS_KEY: 'SK', AWS_SESSION_TOKEN: 'ST' });
    expect(s.credentials).toEqual({ accessKeyId: 'AK', secretAccessKey: 'SK', sessionToken: 'ST' });
  });

  it('builds clients pointed at the endpoints, S3 by path', async () => {
    const s = settingsFromEnv({ ENSEMBLE_S3_ENDPOINT: 'http://127.0.0.1:1234', ENSEMBLE_DYNAMODB_ENDPOINT: 'http://127.0.0.1:5678' });
    const s3 = makeS3Client(s);
    const dynamo = makeDynamoClient(s);
    expect(s3.config.forcePathStyle).toBe(true);
    expect(await s3.config.region()).toBe('us-east-1');
    const s3Endpoint = await s3.config.endpoint!();
    expect(`${s3Endpoint.hostname}:${s3Endpoint.port}`).toBe('127.0.0.1:1234');
    const dynamoEndpoint = await dynamo.config.endpoint!();
    expect(`${dynamoEndpoint.hostname}:${dynamoEndpoint.port}`).toBe('127.0.0.1:5678');
    expect(await s3.config.credentials()).toMatchObject(LOCAL_CREDENTIALS);
    s3.destroy();
    dynamo.destroy();
  });
});
