// The ext_authz gRPC adapter: envoy.service.auth.v3.Authorization/Check, hand-built service
// definition (identity (de)serialisers; decoding happens inside the handler so that garbage
// bytes become a clean deny instead of a gRPC INTERNAL). Every failure path ends in ONE place
// (`failureDecision`) and is a deny — never an allow, never a crash:
//   - undecodable bytes / no attributes.request.http   → 400 `Bad Request`           (bad_request)
//   - too many / too large headers                     → 431 `Request Header Fields Too Large` (bad_request)
//   - check() throws QuotaStoreUnavailableError        → 503 `Service unavailable`   (errors.ts
// ERRORS.quotaStoreUnavailable)
//   - check() throws anything else / returns nothing / encoding fails
//                                                      → 500 `Something went wrong, you should try later. Thanks for
// your understanding.` (ERRORS.internal)
// Deny bodies and headers come from errors.ts `errorResponse`.
// hooks.onCheck: the Authorizer (decide.ts) reports its own decisions; the adapter reports ONLY
// the decisions it makes itself (malformed requests, check() failures), so passing the same
// hooks object to both counts every request exactly once.
import * as grpc from '@grpc/grpc-js';
import type { Logger } from 'pino';
import {
  DEFAULT_LIMITS,
  MalformedCheckRequest,
  decodeCheckRequest,
  encodeDecision,
  type CodecLimits,
} from './check-codec.js';
import { ERRORS, deny } from './errors.js';
import { QuotaStoreUnavailableError, type AuthzHooks, type CheckInput, type Decision } from './types.js';

export const CHECK_PATH = '/envoy.service.auth.v3.Authorization/Check';

export interface AuthzDeps {
  /** A decision now (answered in the same turn) or later. */
  check: (input: CheckInput) => Decision | Promise<Decision>;
  logger: Logger;
  hooks?: AuthzHooks;
  /** Request size limits (defaults: 200 headers, 96 KiB). */
  limits?: Partial<CodecLimits>;
  /** Port credentials (startAuthzServer; default plaintext). */
  credentials?: grpc.ServerCredentials;
}

const identity = (b: Buffer): Buffer => b;

/** grpc-js service definition with raw-bytes (de)serialisers. */
export const AUTHORIZATION_SERVICE: grpc.ServiceDefinition = {
  Check: {
    path: CHECK_PATH,
    requestStream: false,
    responseStream: false,
    requestSerialize: identity,
    requestDeserialize: identity,
    responseSerialize: identity,
    responseDeserialize: identity,
    originalName: 'check',
  },
};

type Deny = Extract<Decision, { allow: false }>;

/** The one error → decision adapter. */
export function failureDecision(err: unknown, input?: CheckInput): Deny {
  const descriptorId = input?.contextExtensions.descriptor_id;
  const base = descriptorId ? { descriptorId } : {};
  if (err instanceof MalformedCheckRequest) {
    return err.status === 431
      ? {
          allow: false,
          reason: 'bad_request',
          status: 431,
          message: 'Request Header Fields Too Large',
          code: 'errors.request.header.fields.too.large',
          ...base,
        }
      : {
          allow: false,
          reason: 'bad_request',
          status: 400,
          message: 'Bad Request',
          code: 'errors.bad.request',
          ...base,
        };
  }
  if (err instanceof QuotaStoreUnavailableError) return deny(ERRORS.quotaStoreUnavailable, descriptorId);
  return deny(ERRORS.internal, descriptorId);
}

export function registerAuthz(server: grpc.Server, deps: AuthzDeps): void {
  const limits: CodecLimits = { ...DEFAULT_LIMITS, ...deps.limits };
  const { check, logger, hooks } = deps;
  const onCheck = hooks?.onCheck;

  const finish = (
    cb: grpc.sendUnaryData<Buffer>,
    d: Decision,
    input: CheckInput | undefined,
    t0: bigint,
    own: boolean,
  ): void => {
    let out: Buffer;
    try {
      out = encodeDecision(d, input);
    } catch (err) {
      logger.error({ err }, 'ext_authz: cannot encode decision');
      d = failureDecision(err, input);
      out = encodeDecision(d, undefined);
      own = true;
    }
    cb(null, out);
    if (own && onCheck) {
      try {
        onCheck(d, Number(process.hrtime.bigint() - t0) / 1e9);
      } catch {
        /* hooks never break a decision */
      }
    }
  };

  const settled = (cb: grpc.sendUnaryData<Buffer>, d: Decision | undefined, input: CheckInput, t0: bigint): void =>
    d
      ? finish(cb, d, input, t0, false)
      : finish(cb, failureDecision(new Error('check returned nothing'), input), input, t0, true);

  const handler: grpc.handleUnaryCall<Buffer, Buffer> = (call, cb) => {
    const t0 = process.hrtime.bigint();
    let input: CheckInput;
    try {
      input = decodeCheckRequest(call.request, limits);
    } catch (err) {
      logger.warn({ err: (err as Error).message }, 'ext_authz: malformed CheckRequest');
      finish(cb, failureDecision(err), undefined, t0, true);
      return;
    }
    let r: Decision | Promise<Decision> | undefined;
    try {
      r = check(input);
    } catch (err) {
      r = Promise.reject(err);
    }
    if (!(r instanceof Promise)) {
      settled(cb, r, input, t0);
      return;
    }
    r.then(
      (d) => settled(cb, d, input, t0),
      (err: unknown) => {
        if (!(err instanceof QuotaStoreUnavailableError)) logger.error({ err }, 'ext_authz: check failed');
        finish(cb, failureDecision(err, input), input, t0, true);
      },
    );
  };
  server.addService(AUTHORIZATION_SERVICE, { Check: handler });
}

export interface RunningAuthzServer {
  port: number;
  stop(): Promise<void>;
}

/** A standalone gRPC server serving only ext_authz (plaintext unless `deps.credentials`: TLS / mTLS). */
export async function startAuthzServer(host: string, port: number, deps: AuthzDeps): Promise<RunningAuthzServer> {
  const server = new grpc.Server({
    'grpc.max_receive_message_length': 1024 * 1024,
    'grpc.max_send_message_length': 1024 * 1024,
  });
  registerAuthz(server, deps);
  const bound = await new Promise<number>((resolve, reject) => {
    server.bindAsync(
      `${host.includes(':') && !host.startsWith('[') ? `[${host}]` : host}:${port}`,
      deps.credentials ?? grpc.ServerCredentials.createInsecure(),
      (err, p) => (err ? reject(err) : resolve(p)),
    );
  });
  return {
    port: bound,
    stop: () =>
      new Promise<void>((resolve) => {
        const t = setTimeout(() => {
          server.forceShutdown();
          resolve();
        }, 2000);
        server.tryShutdown(() => {
          clearTimeout(t);
          resolve();
        });
      }),
  };
}
