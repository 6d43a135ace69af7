// Otoroshi's resilience semantics on a descriptor's Envoy clusters and on the gateway's local
// replies: no circuit-breaker cap Otoroshi does not have, a target whose breaker is open (ejected,
// or failing its health check) never receives traffic, and upstream failures answer with
// Otoroshi's errors.
import type {
  Cluster,
  envoy_config_accesslog_v3_AccessLogFilter as AccessLogFilter,
  envoy_config_cluster_v3_CircuitBreakers as CircuitBreakers,
  envoy_extensions_filters_network_http_connection_manager_v3_ResponseMapper as ResponseMapper,
} from '../../../proto/envoy-types.js';
import { errorResponse } from '../../authz/errors.js';
import { headerValue, wrapped } from './common.js';

/**
 * Envoy's default thresholds (1,024 connections, pending and concurrent requests, 3 concurrent
 * retries per cluster) would refuse traffic Otoroshi serves: it has no such per-service cap. A
 * value no gateway reaches stands for "no cap".
 */
export const NO_CAP = 1_000_000;

export function uncappedCircuitBreakers(): CircuitBreakers {
  const limit = wrapped(NO_CAP);
  return { thresholds: [{ maxConnections: limit, maxPendingRequests: limit, maxRequests: limit, maxRetries: limit }] };
}

/**
 * Otoroshi removes targets with an open breaker (or failing their health check) before load
 * balancing and answers 503 when none is left. Envoy's default panic threshold (50 %) would send
 * traffic to ejected hosts instead, e.g. always to the single target of a descriptor: 0 disables it.
 */
export function failFastLbConfig(): Pick<Cluster, 'commonLbConfig'> {
  return { commonLbConfig: { healthyPanicThreshold: { value: 0 } } };
}

export const UPSTREAM_TIMEOUT =
  'Something went wrong, the backend service does not respond quickly enough, you should try later. Thanks for ' +
  'your understanding';
export const UPSTREAM_OVERWHELMED =
  'Something went wrong, the backend service seems a little bit overwhelmed, you should try later. Thanks for ' +
  'your understanding';
export const UPSTREAM_REFUSED =
  'Something went wrong, the connection to backend service was refused, you should try later. Thanks for your ' +
  'understanding';
export const PROXY_ERROR = 'Something went wrong, you should try later. Thanks for your understanding.';

/** Otoroshi's HTML rule: no `Accept` header, or a `,`-separated token exactly `text/html` (errors.ts `wantsHtml`). */
function wantsHtmlFilter(): AccessLogFilter {
  return {
    orFilter: {
      filters: [
        { headerFilter: { header: { name: 'accept', presentMatch: true, invertMatch: true } } },
        {
          headerFilter: {
            header: { name: 'accept', stringMatch: { safeRegex: { regex: '(?:.*,)?text/html(?:,.*)?' } } },
          },
        },
      ],
    },
  };
}

/**
 * Local-reply mappers on Envoy response flags: the status (when it changes), Otoroshi's headers
 * and body — HTML when the client wants it, else JSON — exactly as the Check formats its denials.
 */
function flagMappers(
  flags: readonly string[],
  message: string,
  status: number,
  changeStatus: boolean,
): ResponseMapper[] {
  const flagFilter: AccessLogFilter = { responseFlagFilter: { flags: [...flags] } };
  const mapper = (html: boolean): ResponseMapper => {
    const e = errorResponse(
      { allow: false, reason: 'internal', status, message, code: '' },
      html ? 'text/html' : 'application/json',
    );
    return {
      filter: html ? { andFilter: { filters: [flagFilter, wantsHtmlFilter()] } } : flagFilter,
      ...(changeStatus ? { statusCode: wrapped(status) } : {}),
      body: { inlineString: e.body },
      bodyFormatOverride: {
        textFormatSource: { inlineString: '%LOCAL_REPLY_BODY%' },
        contentType: String(e.headers['Content-Type']),
      },
      headersToAdd: [
        headerValue('Otoroshi-Error', 'true', 'OVERWRITE_IF_EXISTS_OR_ADD'),
        headerValue('Otoroshi-Error-Msg', message, 'OVERWRITE_IF_EXISTS_OR_ADD'),
      ],
    };
  };
  return [mapper(true), mapper(false)];
}

/**
 * Envoy's own replies to upstream failures, as Otoroshi answers them: timeout (UT: callTimeout per
 * try, globalTimeout per request) 504; no healthy target (UH: every breaker open) or an overflow
 * (UO) 503; connection refused (UF, URX: retries exhausted on it) 502; the connection reset or
 * closed by the backend before a response (UR, UC) 502, Otoroshi's generic error. Responses of the backend
 * itself (its 503s included) pass through unchanged.
 */
export function upstreamErrorMappers(): ResponseMapper[] {
  return [
    ...flagMappers(['UT'], UPSTREAM_TIMEOUT, 504, false),
    ...flagMappers(['UH', 'UO'], UPSTREAM_OVERWHELMED, 503, false),
    ...flagMappers(['UF', 'URX'], UPSTREAM_REFUSED, 502, true),
    ...flagMappers(['UR', 'UC'], PROXY_ERROR, 502, true),
  ];
}
