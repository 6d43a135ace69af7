// Admin HTTP API (fastify app factory, tested with inject()). Probes now; metrics and debug
// endpoints are added by their own issues.
import Fastify, { type FastifyInstance } from 'fastify';

export interface AdminState {
  /** true once the first snapshot has been built and published. */
  ready(): boolean;
  /** Free-form facts shown by /health. */
  health(): Record<string, unknown>;
}

export function buildAdminApp(state: AdminState): FastifyInstance {
  const app = Fastify({ logger: false });
  app.get('/live', async () => ({ status: 'ok' }));
  app.get('/health', async () => ({ status: 'ok', ready: state.ready(), ...state.health() }));
  app.get('/ready', async (_req, reply) => {
    if (state.ready()) return { status: 'ready' };
    return reply.code(503).send({ status: 'not ready' });
  });
  return app;
}
