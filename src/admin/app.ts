// Admin HTTP API (fastify app factory, tested with inject()). Probes now; metrics and debug
// endpoints are added by their own issues.
import { createHash, timingSafeEqual } from 'node:crypto';
import Fastify, { type FastifyInstance } from 'fastify';
import type { Registry } from 'prom-client';

/** Probes stay open when a token protects the admin API (kubelets do not send tokens). */
export const OPEN_ADMIN_PATHS: ReadonlySet<string> = new Set(['/live', '/ready', '/health']);

const digest = (s: string): Buffer => createHash('sha256').update(s, 'utf8').digest();

/** `Authorization: Bearer <token>` against the expected token, in constant time. */
export function bearerMatches(header: string | undefined, expected: Buffer): boolean {
  const m = /^Bearer[ ]+(.+)$/i.exec(header ?? '');
  return timingSafeEqual(digest(m?.[1]?.trim() ?? ''), expected) && m !== null;
}

export interface AdminState {
  /** true once the first snapshot has been built and published. */
  ready(): boolean;
  /** Free-form facts shown by /health. */
  health(): Record<string, unknown>;
  /** Prometheus registry served on /metrics (injected, never the global one). */
  registry?: Registry;
  /** Every connected xDS stream: node, type, versions sent/ACKed, last NACK. */
  proxies?(): unknown[];
  /** The resources a node was sent (key material redacted); undefined for an unknown node. */
  configDump?(nodeId: string): unknown;
  /** When set, every endpoint but the probes requires `Authorization: Bearer <token>`. */
  token?: string;
}

export function buildAdminApp(state: AdminState): FastifyInstance {
  const app = Fastify({ logger: false });
  if (state.token) {
    const expected = digest(state.token);
    app.addHook('onRequest', async (req, reply) => {
      const p = req.url.split('?')[0] ?? '';
      if (OPEN_ADMIN_PATHS.has(p)) return;
      if (!bearerMatches(req.headers.authorization, expected)) {
        return reply.code(401).header('www-authenticate', 'Bearer').send({ error: 'admin token required' });
      }
    });
  }
  app.get('/live', async () => ({ status: 'ok' }));
  app.get('/health', async () => ({ status: 'ok', ready: state.ready(), ...state.health() }));
  app.get('/ready', async (_req, reply) => {
    if (state.ready()) return { status: 'ready' };
    return reply.code(503).send({ status: 'not ready' });
  });
  const { proxies, configDump } = state;
  if (proxies) app.get('/debug/proxies', async () => ({ proxies: proxies() }));
  if (configDump) {
    app.get<{ Querystring: { node?: string } }>('/debug/config_dump', async (req, reply) => {
      const node = req.query.node;
      if (!node) return reply.code(400).send({ error: 'query parameter node=<node id> is required' });
      const dump = configDump(node);
      if (dump === undefined) return reply.code(404).send({ error: `no connected node ${JSON.stringify(node)}` });
      return dump;
    });
  }
  const registry = state.registry;
  if (registry) {
    app.get('/metrics', async (_req, reply) => {
      const body = await registry.metrics();
      return reply.header('content-type', registry.contentType).send(body);
    });
  }
  return app;
}
