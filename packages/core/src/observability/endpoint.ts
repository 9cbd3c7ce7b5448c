/**
 * What the HTTP app needs of a metrics implementation: the app counts its
 * responses into it and serves its text on `GET /metrics`. An interface, so
 * that the app (and the Lambda bundle built from it) does not pull in the
 * Prometheus client where no one scrapes.
 */
export interface MetricsEndpoint {
  /** One HTTP response the app sent, any route. */
  httpResponse(method: string, status: number): void;
  /** The exposition text and its content type, as of now. */
  scrape(): Promise<{ body: string; contentType: string }>;
}

/** Items waiting in one stage's queue. */
export interface StageDepth {
  pipeline: string;
  version: string;
  stage: string;
  depth: number;
}

/** What is read when scraped rather than counted as it happens. */
export interface MetricsSources {
  /** Every loaded stage's queue depth now. */
  queueDepths?(): StageDepth[];
  /** Run records taken but not yet in DynamoDB. */
  runRecordBacklog?(): number;
}
