/**
 * Lambda entry point of the batch job consumer: the event source mappings on
 * each pipeline's job queue and its dead-letter queue invoke it
 * (ReportBatchItemFailures), onto the same executor the gateway uses.
 */
import { createJobsHandler } from '@ensemble/core/lambda/jobs.js';

export const handler = await createJobsHandler();
