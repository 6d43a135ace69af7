// The ext_authz stage: quota store (in-memory, or Redis with fail-open/closed), JWT verifiers,
// the Authorizer and its gRPC server. Store failures are reported once, by the Authorizer
// (degraded answer or fail-closed error).
import fs from 'node:fs';
import type { Logger } from 'pino';
import { serverCredentialsFrom, type Config } from '../config.js';
import { Authorizer } from '../authz/decide.js';
import { JwtEngine } from '../authz/jwt.js';
import { buildPolicySteps } from '../authz/policy.js';
import { runSteps, type Steps } from '../model/steps.js';
import { createQuotaStore, FailoverQuotaStore } from '../authz/quota/index.js';
import { startAuthzServer, type RunningAuthzServer } from '../authz/server.js';
import type { AuthzHooks, QuotaStore } from '../authz/types.js';
import type { Model } from '../model/types.js';

/** How long a configured Redis may take to connect before the first Check is answered. */
const REDIS_STARTUP_WAIT_MS = 3000;

export class AuthzStage {
  readonly quota: QuotaStore;
  readonly jwt: JwtEngine;
  readonly authorizer: Authorizer;
  /** With TLS on the ext_authz port, Envoy's oxds-ext-authz cluster verifies it with this CA (inlined in CDS). */
  readonly caPem: string | undefined;
  private server: RunningAuthzServer | undefined;

  constructor(
    private readonly config: Config,
    private readonly logger: Logger,
    private readonly hooks: AuthzHooks,
  ) {
    this.caPem =
      config.authzTlsCert !== undefined
        ? fs.readFileSync(config.envoyAuthzCa ?? config.authzTlsCert, 'utf8')
        : undefined;
    if (config.authzClientCa !== undefined && config.envoyAuthz === 'on') {
      logger.warn(
        '--authz-client-ca: the generated oxds-ext-authz cluster presents no client certificate; Envoys need ' +
          'their own cluster (or --envoy-authz off)',
      );
    }
    this.quota = createQuotaStore({
      redisUrl: config.redisUrl,
      failMode: config.quotaFailMode,
      timeZone: config.quotaTimeZone,
      commandTimeoutMs: config.redisCommandTimeoutMs,
      logger: logger.child({ c: 'quota' }),
    });
    this.jwt = new JwtEngine([], { hooks, logger: logger.child({ c: 'jwt' }) });
    this.authorizer = new Authorizer({ quota: this.quota, jwt: this.jwt, hooks });
  }

  /** The port ext_authz listens on (0 before start). */
  get port(): number {
    return this.server?.port ?? 0;
  }

  /** The new model's verifiers and policy. */
  setModel(model: Model): void {
    runSteps(this.setModelSteps(model));
  }

  /** setModel, the policy built in batches; verifiers and policy are set together at the end. */
  *setModelSteps(model: Model): Steps {
    const policy = yield* buildPolicySteps(model);
    this.jwt.setVerifiers(model.jwtVerifiers ?? []);
    this.authorizer.setPolicy(policy);
  }

  async start(): Promise<void> {
    const { config, logger } = this;
    // A configured Redis gets a bounded chance to connect before the first Check (else fail-closed
    // would answer 503s while a healthy Redis is still connecting).
    if (this.quota instanceof FailoverQuotaStore && !(await this.quota.whenReady(REDIS_STARTUP_WAIT_MS))) {
      logger.warn('quota store (redis) not reachable at startup: serving per --quota-fail-mode until it is');
    }
    this.server = await startAuthzServer(config.host, config.authzPort, {
      check: (input) => this.authorizer.checkNow(input),
      logger: logger.child({ c: 'authz' }),
      hooks: this.hooks,
      credentials: serverCredentialsFrom(
        { cert: config.authzTlsCert, key: config.authzTlsKey, clientCa: config.authzClientCa },
        (f) => fs.readFileSync(f),
      ),
    });
    if (
      config.envoyAuthz === 'on' &&
      !config.envoyAuthzAddress &&
      (config.host === '0.0.0.0' || config.host === '::')
    ) {
      logger.warn(
        '--host is a wildcard: Envoy is told to reach ext_authz at 127.0.0.1; set --envoy-authz-address (e.g. the ' +
          'Service name) for remote Envoys',
      );
    }
  }

  async stop(): Promise<void> {
    await this.server?.stop();
    this.jwt.close();
    await this.quota.close();
  }
}
