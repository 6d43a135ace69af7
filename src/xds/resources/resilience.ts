// Otoroshi's resilience semantics on a descriptor's Envoy clusters and on the gateway's local
// replies: no circuit-breaker cap Otoroshi does not have, a target whose breaker is open (ejected,
// or failing its health check) never receives traffic, and upstream failures answer with
// Otoroshi's errors (§4.5 upstream errors).
import type { ProtoObject } from '../../proto/loader.js';
import { headerValue, wrapped } from './common.js';

/**
 * Envoy's default thresholds (1,024 connections, pending and concurrent requests, 3 concurrent
 * retries per cluster) would refuse traffic Otoroshi serves: it has no such per-service cap. A
 * value no gateway reaches stands for "no cap".
 */
export const NO_CAP = 1_000_000;

export function uncappedCircuitBreakers(): ProtoObject {
  const limit = wrapped(NO_CAP);
  return { thresholds: [{ maxConnections: limit, maxPendingRequests: limit, maxRequests: limit, maxRetries: limit }] };
}

/**
 * Otoroshi removes targets with an open breaker (or failing their health check) before load
 * balancing and answers 503 when none is left. Envoy's default panic threshold (50 %) would send
 * traffic to ejected hosts instead, e.g. always to the single target of a descriptor: 0 disables it.
 */
export function failFastLbConfig(): ProtoObject {
  return { commonLbConfig: { healthyPanicThreshold: { value: 0 } } };
}

export const UPSTREAM_TIMEOUT = 'Something went wrong, the backend service does not respond quickly enough, you should try later. Thanks for your understanding';
export const UPSTREAM_OVERWHELMED = 'Something went wrong, the backend service seems a little bit overwhelmed, you should try later. Thanks for your understanding';
export const UPSTREAM_REFUSED = 'Something went wrong, the connection to backend service was refused, you should try later. Thanks for your understanding';
export const PROXY_ERROR = 'Something went wrong, you should try later. Thanks for your understanding.';

/** A local-reply mapper on Envoy response flags: status (when it changes), Otoroshi's JSON error and headers. */
function flagMapper(flags: readonly string[], message: string, status?: number): ProtoObject {
  return {
    filter: { responseFlagFilter: { flags: [...flags] } },
    ...(status !== undefined ? { statusCode: wrapped(status) } : {}),
    body: { inlineString: JSON.stringify({ 'Otoroshi-Error': message }) },
    bodyFormatOverride: { textFormatSource: { inlineString: '%LOCAL_REPLY_BODY%' }, contentType: 'application/json' },
    headersToAdd: [headerValue('Otoroshi-Error', 'true', 'OVERWRITE_IF_EXISTS_OR_ADD'), headerValue('Otoroshi-Error-Msg', message, 'OVERWRITE_IF_EXISTS_OR_ADD')],
  };
}

/**
 * Envoy's own replies to upstream failures, as Otoroshi answers them: timeout (UT: callTimeout per
 * try, globalTimeout per request) 504; no healthy target (UH: every breaker open) or an overflow
 * (UO) 503; connection refused (UF, URX: retries exhausted on it) 502; the connection reset or
 * closed by the backend before a response (UR, UC) 502, Otoroshi's generic error. Responses of the backend
 * itself (its 503s included) pass through unchanged.
 */
export function upstreamErrorMappers(): ProtoObject[] {
  return [flagMapper(['UT'], UPSTREAM_TIMEOUT, 504), flagMapper(['UH', 'UO'], UPSTREAM_OVERWHELMED, 503), flagMapper(['UF', 'URX'], UPSTREAM_REFUSED, 502), flagMapper(['UR', 'UC'], PROXY_ERROR, 502)];
}
