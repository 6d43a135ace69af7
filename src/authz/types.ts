// Contracts of the ext_authz side: gRPC adapter (server.ts) → decide() (pure policy + quota
// store) → Decision → CheckResponse. Nothing here knows about protobuf or gRPC.
import type { ApiKeyQuotas } from '../model/types.js';

/** A CheckRequest reduced to what the policy reads. Header names are lower-case. */
export interface CheckInput {
  method: string;
  /** `:authority` / host as sent (may carry a port). */
  host: string;
  /** Path without the query string (always starts with `/`; `/` when absent). */
  path: string;
  /** Raw query string without `?` ('' when none). */
  query: string;
  headers: Readonly<Record<string, string>>;
  /** Client address (Envoy's `source.address.socket_address.address`). */
  sourceIp?: string;
  /** `http` / `https` when known. */
  scheme?: string;
  /** Per-route `context_extensions` (our routes set `descriptor_id`). */
  contextExtensions: Readonly<Record<string, string>>;
}

export type DenyReason =
  | 'service_not_found'
  | 'no_apikey'
  | 'invalid_apikey'
  | 'bad_apikey'
  | 'apikey_disabled'
  | 'apikey_expired'
  | 'apikey_unauthorized'
  | 'readonly'
  | 'restriction'
  | 'quota_exceeded'
  | 'quota_store_unavailable'
  | 'jwt_invalid'
  | 'jwt_missing'
  | 'bad_request'
  | 'maintenance'
  | 'ip_not_allowed'
  | 'internal';

export type AllowReason = 'public' | 'apikey' | 'jwt_verifier';

export interface HeaderMutation {
  /** Headers to set on the upstream request (overwrite). */
  upstreamHeaders: Record<string, string>;
  /** Headers to remove from the upstream request. */
  removeUpstreamHeaders: string[];
  /** Headers to add to the response sent back to the client. */
  responseHeaders: Record<string, string>;
}

export type Decision =
  | ({
      allow: true;
      reason: AllowReason;
      descriptorId: string;
      clientId?: string;
    } & HeaderMutation)
  | {
      allow: false;
      reason: DenyReason;
      /** HTTP status sent to the client. */
      status: number;
      /** Otoroshi's message, e.g. `No ApiKey provided`. */
      message: string;
      /** Otoroshi's error code, e.g. `errors.no.api.key` (events and logs only). */
      code: string;
      /** Restrictions answer with an empty body. */
      emptyBody?: boolean;
      /** Extra response headers (e.g. `Location`, `Allow`). */
      responseHeaders?: Record<string, string>;
      descriptorId?: string;
      clientId?: string;
    };

export interface QuotaResult {
  /** false when one of the quotas is exhausted (the call was NOT counted). */
  allowed: boolean;
  exceeded?: 'throttling' | 'daily' | 'monthly';
  /** After counting this call (when allowed). */
  dailyRemaining: number;
  monthlyRemaining: number;
  /** Calls counted in the current 10 s throttling window. */
  windowCalls: number;
  /** true when the answer came from local counters because the shared store is down. */
  degraded: boolean;
}

/**
 * Quota counters. `consume` checks every quota and, only when all hold, counts the call —
 * atomically and in one round trip for a shared store.
 */
export interface QuotaStore {
  consume(clientId: string, quotas: ApiKeyQuotas, nowMs: number): Promise<QuotaResult>;
  /** Reads without counting (admin/debug). */
  peek(clientId: string, quotas: ApiKeyQuotas, nowMs: number): Promise<Omit<QuotaResult, 'allowed' | 'exceeded'>>;
  close(): Promise<void>;
}

/** Thrown by a shared store that cannot answer and is configured fail-closed. */
export class QuotaStoreUnavailableError extends Error {
  readonly code = 'OXDS_QUOTA_STORE_UNAVAILABLE';
}

/** Observability hooks (metrics are attached by the metrics module; default no-op). */
export interface AuthzHooks {
  onCheck?(decision: Decision, seconds: number): void;
  onQuotaExceeded?(clientId: string, which: 'throttling' | 'daily' | 'monthly'): void;
  onQuotaStoreError?(mode: 'fail-open' | 'fail-closed'): void;
  /** Suspicious events for the audit log (bad secrets, alg confusion...). */
  onSuspicious?(event: {
    kind: string;
    clientId?: string;
    sourceIp?: string;
    descriptorId?: string;
    detail: string;
  }): void;
}
