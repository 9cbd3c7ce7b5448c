/**
 * The events Lambda hands the gateway (payload format 2.0), as AWS documents
 * them: a function URL request and an API Gateway HTTP API request. Bodies
 * that are not text arrive base64-encoded with isBase64Encoded: true.
 */
import type { LambdaEvent } from 'hono/aws-lambda';

export interface EventOptions {
  headers?: Record<string, string>;
  body?: Uint8Array | string;
  base64?: boolean;
  cookies?: string[];
}

function parts(target: string): { rawPath: string; rawQueryString: string } {
  const [rawPath, rawQueryString = ''] = target.split('?');
  return { rawPath, rawQueryString };
}

function encodeBody(opts: EventOptions): string | undefined {
  if (opts.body === undefined) return undefined;
  return opts.base64 ? Buffer.from(opts.body).toString('base64') : String(opts.body);
}

/** A Lambda function URL invocation. */
export function urlEvent(method: string, target: string, opts: EventOptions = {}): LambdaEvent {
  const { rawPath, rawQueryString } = parts(target);
  const host = 'abcdefghijklmnop.lambda-url.us-east-1.on.aws';
  return {
    version: '2.0',
    routeKey: '$default',
    rawPath,
    rawQueryString,
    cookies: opts.cookies ?? [],
    headers: { host, 'user-agent': 'vitest', 'x-forwarded-proto': 'https', ...opts.headers },
    queryStringParameters: rawQueryString ? Object.fromEntries(new URLSearchParams(rawQueryString)) : undefined,
    requestContext: {
      accountId: 'anonymous',
      apiId: 'abcdefghijklmnop',
      domainName: host,
      domainPrefix: 'abcdefghijklmnop',
      http: { method, path: rawPath, protocol: 'HTTP/1.1', sourceIp: '127.0.0.1', userAgent: 'vitest' },
      requestId: 'c0ffee00-0000-4000-8000-000000000000',
      routeKey: '$default',
      stage: '$default',
      time: '23/Nov/2026:16:00:00 +0000',
      timeEpoch: 1_795_449_600_000,
    },
    body: encodeBody(opts),
    isBase64Encoded: opts.base64 ?? false,
  } as unknown as LambdaEvent;
}

/** An API Gateway HTTP API ($default stage, `ANY /{proxy+}` route) invocation. */
export function httpApiEvent(method: string, target: string, opts: EventOptions = {}): LambdaEvent {
  const { rawPath, rawQueryString } = parts(target);
  const host = 'a1b2c3d4e5.execute-api.us-east-1.amazonaws.com';
  const headers: Record<string, string> = {
    accept: '*/*', host, 'user-agent': 'vitest', 'x-amzn-trace-id': 'Root=1-655f6a00-0123456789abcdef01234567',
    'x-forwarded-for': '203.0.113.7', 'x-forwarded-port': '443', 'x-forwarded-proto': 'https', ...opts.headers,
  };
  if (opts.body !== undefined) headers['content-length'] = String(typeof opts.body === 'string' ? Buffer.byteLength(opts.body) : opts.body.byteLength);
  return {
    version: '2.0',
    routeKey: 'ANY /{proxy+}',
    rawPath,
    rawQueryString,
    cookies: opts.cookies,
    headers,
    queryStringParameters: rawQueryString ? Object.fromEntries(new URLSearchParams(rawQueryString)) : undefined,
    pathParameters: { proxy: rawPath.replace(/^\//, '') },
    requestContext: {
      accountId: '123456789012',
      apiId: 'a1b2c3d4e5',
      domainName: host,
      domainPrefix: 'a1b2c3d4e5',
      http: { method, path: rawPath, protocol: 'HTTP/1.1', sourceIp: '203.0.113.7', userAgent: 'vitest' },
      requestId: 'Nc6yAjz9IAMEbXw=',
      routeKey: 'ANY /{proxy+}',
      stage: '$default',
      time: '23/Nov/2026:16:00:00 +0000',
      timeEpoch: 1_795_449_600_000,
    },
    body: encodeBody(opts),
    isBase64Encoded: opts.base64 ?? false,
  } as unknown as LambdaEvent;
}
