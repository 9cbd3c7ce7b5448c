/** S3 reports a missing object or bucket under several names, and HEAD responses carry no body at all. */
export function isNotFound(e: unknown): boolean {
  if (typeof e !== 'object' || e === null) return false;
  const err = e as { name?: string; $metadata?: { httpStatusCode?: number } };
  return (
    err.name === 'NotFound' ||
    err.name === 'NoSuchKey' ||
    err.name === 'NoSuchBucket' ||
    err.$metadata?.httpStatusCode === 404
  );
}

export function s3Url(bucket: string, key: string): string {
  return `s3://${bucket}/${key}`;
}
