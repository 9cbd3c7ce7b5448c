/**
 * Triton's failure reasons (`nv_inference_request_failure{reason}`,
 * docs/user_guide/metrics.md): REJECTED when the scheduler refused the work
 * or let it time out in its queue, CANCELED when the caller went away,
 * BACKEND when the model itself failed, OTHER for the rest.
 */
export type FailureReason = 'REJECTED' | 'CANCELED' | 'BACKEND' | 'OTHER';

export const FAILURE_REASONS: readonly FailureReason[] = ['REJECTED', 'CANCELED', 'BACKEND', 'OTHER'];

/** The reason for one of our ErrorCodes (a plain string, as events carry it). */
export function failureReason(code: string | undefined): FailureReason {
  switch (code) {
    // A full queue (429), a stage not ready or a server shutting down (503), a deadline passed (504).
    case 'overloaded': case 'not_ready': case 'timeout': return 'REJECTED';
    case 'cancelled': return 'CANCELED';
    // The stage ran and failed, or answered with what we cannot use.
    case 'stage_failed': case 'bad_gateway': return 'BACKEND';
    // Bad input, too large, internal errors.
    default: return 'OTHER';
  }
}
