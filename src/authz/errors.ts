// Otoroshi error responses (docs/decisions.md: "Errors") and the deny catalogue.
import type { Decision, DenyReason } from './types.js';

export type Deny = Extract<Decision, { allow: false }>;

/** One entry of Otoroshi's error catalogue (+ our own where the spec is silent, marked). */
export interface ErrorSpec {
  status: number;
  message: string;
  code: string;
  reason: DenyReason;
  emptyBody?: boolean;
}

const e = (status: number, message: string, code: string, reason: DenyReason, emptyBody = false): ErrorSpec =>
  emptyBody ? { status, message, code, reason, emptyBody } : { status, message, code, reason };

/** Every deny decide() produces. Frozen: decisions copy from here, never mutate. */
export const ERRORS = Object.freeze({
  serviceNotFound: e(404, 'Service not found', 'errors.service.not.found', 'service_not_found'),
  serviceNotFoundInvalidHost: e(
    404,
    'Service not found: invalid host',
    'errors.service.not.found.invalid.host',
    'service_not_found',
  ),
  serviceUnavailable: e(503, 'Service unavailable', 'errors.service.unavailable', 'service_not_found'),
  maintenance: e(503, 'Service in maintenance mode', 'errors.service.in.maintenance', 'maintenance'),
  underConstruction: e(503, 'Service under construction', 'errors.service.under.construction', 'maintenance'),
  ipNotAllowed: e(403, 'Your IP address is not allowed', 'errors.ip.address.not.allowed', 'ip_not_allowed'),
  // ours: a path that cannot be normalised as Envoy does (encoded slash, broken escape, control character)
  badPath: e(400, 'Bad request', 'errors.bad.request', 'bad_request'),
  missingHeaders: e(400, 'Missing header(s)', 'errors.missing.headers', 'bad_request'),
  methodNotAllowed: e(
    405,
    'Method not allowed. Can only handle GET, HEAD, OPTIONS',
    'errors.method.not.allowed',
    'readonly',
  ),
  restrictionNotFound: e(404, 'Not Found', 'errors.not.found', 'restriction', true),
  restrictionForbidden: e(403, 'Forbidden', 'errors.forbidden', 'restriction', true),
  noApiKey: e(400, 'No ApiKey provided', 'errors.no.api.key', 'no_apikey'),
  invalidApiKey: e(401, 'Invalid API key', 'errors.invalid.api.key', 'invalid_apikey'),
  invalidApiKeyJwt: e(401, 'Invalid ApiKey provided', 'errors.invalid.api.key', 'invalid_apikey'),
  badApiKey: e(401, 'Bad API key', 'errors.bad.api.key', 'bad_apikey'),
  badApiKeyDisabled: e(401, 'Bad API key', 'errors.bad.api.key', 'apikey_disabled'),
  badApiKeyExpired: e(401, 'Bad API key', 'errors.bad.api.key', 'apikey_expired'),
  badApiKeyClientIdOnly: e(400, 'Bad API key', 'errors.bad.api.key', 'bad_apikey'),
  badApiKeyJwt: e(400, 'Bad API key 1', 'errors.bad.api.key', 'bad_apikey'),
  routingInvalid: e(401, 'Invalid API key', 'errors.invalid.api.key', 'apikey_unauthorized'),
  routingBad: e(401, 'Bad API key', 'errors.bad.api.key', 'apikey_unauthorized'),
  routingJwt: e(401, 'Invalid ApiKey provided', 'errors.invalid.api.key', 'apikey_unauthorized'),
  tooManyRequests: e(429, 'You performed too much requests', 'errors.too.much.requests', 'quota_exceeded'),
  // ours (docs/decisions.md: "Quota store outage" names no message): Otoroshi's generic 503 wording.
  quotaStoreUnavailable: e(503, 'Service unavailable', 'errors.service.unavailable', 'quota_store_unavailable'),
  // JWT verifiers
  badVerifierId: e(500, 'error.bad.globaljwtverifier.id', 'error.bad.globaljwtverifier.id', 'internal'),
  // ours: any exception inside check() (never an allow)
  internal: e(
    500,
    'Something went wrong, you should try later. Thanks for your understanding.',
    'errors.internal.error',
    'internal',
  ),
});

export function deny(spec: ErrorSpec, descriptorId?: string, clientId?: string): Deny {
  const d: Deny = { allow: false, reason: spec.reason, status: spec.status, message: spec.message, code: spec.code };
  if (spec.emptyBody === true) d.emptyBody = true;
  if (descriptorId !== undefined) d.descriptorId = descriptorId;
  if (clientId !== undefined) d.clientId = clientId;
  return d;
}

export interface ErrorResponse {
  status: number;
  headers: Record<string, string>;
  body: string;
}

/** Otoroshi: `Accept` split on `,` WITHOUT trimming; a token exactly `text/html`, or no header, → HTML. */
export function wantsHtml(accept: string | undefined): boolean {
  if (accept === undefined) return true;
  for (const t of accept.split(',')) if (t === 'text/html') return true;
  return false;
}

function headerSafe(v: string): string {
  // Header values cannot carry CR/LF/NUL (and gRPC metadata rejects other controls).
  return v.replace(/[\u0000-\u001f\u007f]/g, ' ');
}

function escapeHtml(s: string): string {
  return s
    .replace(/&/g, '&amp;')
    .replace(/</g, '&lt;')
    .replace(/>/g, '&gt;')
    .replace(/"/g, '&quot;')
    .replace(/'/g, '&#39;');
}

/**
 * The HTTP answer for a deny: `Otoroshi-Error: true`, `Otoroshi-Error-Msg`, `Otoroshi-State-Resp`
 * (incoming `Otoroshi-State` or `--`), JSON `{"Otoroshi-Error": msg}` or an HTML page, empty
 * body for restrictions. `accept` is the raw `Accept` header (undefined when absent).
 */
export function errorResponse(decision: Deny, accept: string | undefined, otoroshiState?: string): ErrorResponse {
  const headers: Record<string, string> = {};
  if (decision.responseHeaders !== undefined)
    for (const [k, v] of Object.entries(decision.responseHeaders)) headers[k] = headerSafe(v);
  headers['Otoroshi-Error'] = 'true';
  headers['Otoroshi-Error-Msg'] = headerSafe(decision.message);
  headers['Otoroshi-State-Resp'] =
    otoroshiState !== undefined && otoroshiState !== '' ? headerSafe(otoroshiState) : '--';
  if (decision.emptyBody === true) return { status: decision.status, headers, body: '' };
  if (wantsHtml(accept)) {
    headers['Content-Type'] = 'text/html; charset=utf-8';
    const m = escapeHtml(decision.message);
    return {
      status: decision.status,
      headers,
      body:
        '<!DOCTYPE html>\n<html>\n<head><meta charset="utf-8"><title>Otoroshi error</title></head>\n<body>\n' +
        `<h1>Otoroshi error</h1>\n<p>${m}</p>\n</body>\n</html>\n`,
    };
  }
  headers['Content-Type'] = 'application/json';
  return { status: decision.status, headers, body: JSON.stringify({ 'Otoroshi-Error': decision.message }) };
}
