// What one translate remembers for the next: everything keyed by content (a descriptor, by identity or JSON; a
// virtual host's candidates or routes by identity, a name), so a hit returns exactly what a miss
// would compute and translate stays a function of its input. The caller owns the cache (the
// pipeline keeps one for the life of the process); entries the last translate did not use are
// dropped at its end, so it is bounded by the size of the last input.
import type { ProtoObject } from '../../../proto/loader.js';
import type { ConfigError, Descriptor } from '../../model/types.js';
import type { ValidationIssue } from '../validate.js';
import type { Contribution } from './contribution.js';
import type { Entry } from './order.js';

export interface Used {
  used: number;
}

/** A route of one descriptor for one variant, path and :authority check: validated and encoded. */
export interface RouteRec {
  obj: ProtoObject;
  bytes: Uint8Array;
}
export type RouteSlot = RouteRec[] | { issue: ValidationIssue } | null;

export interface DescriptorMemo extends Used {
  /** The descriptor it was computed from (never mutated: models are immutable) and the context's JSON. */
  d: Descriptor;
  ctxJson: string;
  c: Contribution;
  /** The first context-free problem of the descriptor (its own route configurations, clusters, endpoints). */
  problem: ConfigError | null;
  routes: Map<string, RouteSlot>;
  /** Its own virtual hosts' ordered entries, by Envoy domain (the same for every variant). */
  own: Map<string, Entry[]>;
}

/** The planned entries of a virtual host, reused while its candidates are the same (by identity). */
export interface VhostPlanMemo extends Used {
  cands: readonly Contribution[];
  entries: readonly Entry[];
}

/** The first problem of a virtual host's own fields (name, domains), null when valid. */
export interface Shell extends Used {
  issue: ValidationIssue | null;
}

export interface VhostRec extends Used {
  name: string;
  /** The planned entries it was built from: the same array (by identity) gives the same vhost. */
  entries?: readonly Entry[];
  routes: RouteRec[];
  obj: ProtoObject;
  domains: string[];
  /** Length of its encoding (name, domains, routes' bytes): the route configurations write it from those. */
  size: number;
}

export interface RouteConfigRec extends Used {
  vhosts: VhostRec[];
  obj: ProtoObject;
  ok: boolean;
}

function sweep<K, V extends Used>(m: Map<K, V>, generation: number): void {
  for (const [k, v] of m) if (v.used !== generation) m.delete(k);
}

/** Memos of translate, created by its caller and passed to every translate of the same stream of models. */
export class TranslateCache {
  generation = 0;
  /** Descriptor memos by descriptor id (a translate serves one descriptor per id). */
  readonly descriptors = new Map<string, DescriptorMemo>();
  /**
   * Validation of a virtual host without its routes, by host key: with Envoy's domains and with
   * gRPC's (keyed by the host string itself: no key is built per lookup).
   */
  readonly shells = new Map<string, Shell>();
  readonly grpcShells = new Map<string, Shell>();
  readonly vhostPlans = new Map<string, VhostPlanMemo>();
  readonly vhosts = new Map<string, VhostRec>();
  readonly routeConfigs = new Map<string, RouteConfigRec>();
  readonly listeners = new Map<string, Used & { obj: ProtoObject }>();
  /** Otoroshi's 404 route, with and without ext_authz. */
  readonly notFound = new Map<boolean, RouteRec>();

  /** Starts a translate: what it uses is marked with the new generation. */
  begin(): void {
    this.generation++;
  }

  /** Ends a translate: drops whatever it did not use. */
  end(): void {
    const maps = [
      this.descriptors,
      this.shells,
      this.grpcShells,
      this.vhostPlans,
      this.vhosts,
      this.routeConfigs,
      this.listeners,
    ];
    for (const m of maps as Map<string, Used>[]) sweep(m, this.generation);
  }

  touch<T extends Used>(m: T): T {
    m.used = this.generation;
    return m;
  }
}
