/** The key the CLI sends to a server that asks for one (ENSEMBLE_API_KEY), as the gateway reads it. */
export function authHeaders(env: Record<string, string | undefined> = process.env): Record<string, string> {
  const key = env.ENSEMBLE_API_KEY?.trim();
  return key ? { 'x-api-key': key } : {};
}
