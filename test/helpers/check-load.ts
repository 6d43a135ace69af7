// Concurrent Check load over one or more ext_authz ports: `workers` sequential loops per port, every
// call recorded (start, end, HTTP status of the decision or -1 for a gRPC error).
import { checkClient, callCheck, outcome } from './check-client.js';

export interface CheckSample {
  /** Index of the port (replica) that answered. */
  replica: number;
  start: number;
  end: number;
  /** 0 = allowed, else the deny status; -1 = gRPC error (no CheckResponse). */
  status: number;
  remaining?: number;
  error?: string;
}

export interface CheckLoad {
  samples: CheckSample[];
  /** Stops issuing new calls and waits for those in flight. */
  stop(): Promise<void>;
  /** Resolves when every worker has finished (after `stop()` or once `max` calls were issued). */
  done: Promise<void>;
}

/** Load on `ports`; at most `max` calls in all when given. */
export function checkLoad(ports: readonly number[], workers: number, req: Buffer, max = Infinity): CheckLoad {
  const samples: CheckSample[] = [];
  let running = true;
  let issued = 0;
  const clients = ports.map((p) => checkClient(p));
  const loop = async (replica: number): Promise<void> => {
    const client = clients[replica]!;
    while (running && issued < max) {
      issued++;
      const start = Date.now();
      try {
        const o = outcome(await callCheck(client, req));
        const rem = o.headers['Otoroshi-Daily-Calls-Remaining'];
        samples.push({
          replica,
          start,
          end: Date.now(),
          status: o.status,
          ...(rem !== undefined ? { remaining: Number(rem) } : {}),
        });
      } catch (err) {
        samples.push({ replica, start, end: Date.now(), status: -1, error: (err as Error).message });
      }
    }
  };
  const done = Promise.all(ports.flatMap((_, r) => Array.from({ length: workers }, () => loop(r)))).then(() => {
    for (const c of clients) c.close();
  });
  return {
    samples,
    done,
    stop: async () => {
      running = false;
      await done;
    },
  };
}

/** Calls in flight at `t` (started before, ended after). */
export function inFlightAt(samples: readonly CheckSample[], from: number, to = from): number {
  return samples.filter((s) => s.start <= to && s.end >= from).length;
}

/** Count of samples per status, e.g. `{ '0': 120, '429': 30 }`. */
export function statusCounts(samples: readonly CheckSample[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const s of samples) out[s.status] = (out[s.status] ?? 0) + 1;
  return out;
}
