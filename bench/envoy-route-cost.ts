// What one real Envoy spends (CPU) to apply a one-route change of its route table, per shape of the
// virtual hosts. `node dist/bench/envoy-route-cost.js` (BENCH_ROUTE_COST_HOSTS=1000,5000,
// BENCH_ROUTE_COST_CHANGES=20, BENCH_ROUTE_COST_VARIANTS=today,...). Envoy reads its route configuration
// from a binary DiscoveryResponse file (file-based RDS, path_config_source): replacing the file is one
// update; Envoy rebuilds the whole route table on it, as it does on a VHDS update. CPU is Envoy's
// utime+stime (/proc/PID/stat) from before the write until its update_success counter moved, minus the
// floor (the same wait with no change). `today` is what the translator generates for bench/gen.ts's
// descriptors; the other variants transform it.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { compile } from '../src/pipeline.js';
import { encodeObject, TYPE_URLS, type ProtoObject } from '../proto/loader.js';
import { findEnvoy, ENVOY_HOWTO } from '../src/envoy/find-envoy.js';
import { EnvoyProcess, eventually } from '../test/helpers/envoy.js';
import { benchView, envInt, envList, stats } from './gen.js';

const HOSTS = envList('BENCH_ROUTE_COST_HOSTS', [1000, 5000]);
const CHANGES = envInt('BENCH_ROUTE_COST_CHANGES', 20);
const ROUTE_CONFIG = 'oxds-http';
const TICK_MS = 1000 / 100; // USER_HZ

type Route = ProtoObject;
type VirtualHost = ProtoObject & { routes: Route[] };
type RouteConfig = ProtoObject & { virtualHosts: VirtualHost[] };

const HEADER_FIELDS = [
  'requestHeadersToAdd',
  'requestHeadersToRemove',
  'responseHeadersToAdd',
  'responseHeadersToRemove',
];

function mapRoutes(rc: RouteConfig, f: (r: Route) => Route): RouteConfig {
  return { ...rc, virtualHosts: rc.virtualHosts.map((vh) => ({ ...vh, routes: vh.routes.map(f) })) };
}

function without(r: Route, keys: readonly string[]): Route {
  return Object.fromEntries(Object.entries(r).filter(([k]) => !keys.includes(k)));
}

type HeaderOption = { header: { key: string; value: string } };
const formatted = (h: HeaderOption): boolean => /%[A-Z_]+[(%]/.test(h.header.value.replace(/%%/g, ''));

/** Shapes compared (each a transform of the generated route configuration). */
const VARIANTS: Record<string, (rc: RouteConfig) => RouteConfig> = {
  today: (rc) => rc,
  'no-formatters': (rc) =>
    mapRoutes(rc, (r) => {
      const out = { ...r };
      for (const k of ['requestHeadersToAdd', 'responseHeadersToAdd']) {
        const list = (r[k] as HeaderOption[] | undefined)?.filter((h) => !formatted(h));
        if (list === undefined) continue;
        if (list.length > 0) out[k] = list;
        else delete out[k];
      }
      return out;
    }),
  'formatters-literal': (rc) =>
    mapRoutes(rc, (r) => {
      const out = { ...r };
      for (const k of ['requestHeadersToAdd', 'responseHeadersToAdd']) {
        const list = r[k] as HeaderOption[] | undefined;
        if (list) out[k] = list.map((h) => ({ ...h, header: { key: h.header.key, value: 'literal' } }));
      }
      return out;
    }),
  'no-header-mutations': (rc) => mapRoutes(without(rc, HEADER_FIELDS) as RouteConfig, (r) => without(r, HEADER_FIELDS)),
  // All the forwarding routes' header mutations once, on the route configuration (after the ones it has),
  // response headers included (the 404 route keeps its own).
  'hoisted-to-route-config': (rc) => {
    const fwd = rc.virtualHosts.flatMap((vh) => vh.routes).find((r) => r['route'] !== undefined);
    const merged = (k: string): unknown[] => [...((rc[k] as unknown[]) ?? []), ...((fwd?.[k] as unknown[]) ?? [])];
    const hoisted = Object.fromEntries(HEADER_FIELDS.filter((k) => fwd?.[k]).map((k) => [k, merged(k)]));
    return {
      ...mapRoutes(rc, (r) => (r['route'] !== undefined ? without(r, HEADER_FIELDS) : r)),
      ...hoisted,
      mostSpecificHeaderMutationsWins: true,
    };
  },
  'hoisted-to-vhost': (rc) => {
    const fwd = rc.virtualHosts.flatMap((vh) => vh.routes).find((r) => r['route'] !== undefined);
    const hoisted = Object.fromEntries(HEADER_FIELDS.filter((k) => fwd?.[k]).map((k) => [k, fwd?.[k]]));
    return {
      ...rc,
      virtualHosts: rc.virtualHosts.map((vh) => ({
        ...vh,
        ...hoisted,
        routes: vh.routes.map((r) => (r['route'] !== undefined ? without(r, HEADER_FIELDS) : r)),
      })),
    };
  },
  'no-404-per-vhost': (rc) => ({
    ...rc,
    virtualHosts: rc.virtualHosts.map((vh, i) =>
      i === 0 ? vh : { ...vh, routes: vh.routes.filter((r) => r['name'] !== 'oxds-not-found') },
    ),
  }),
  'with-ext-authz-per-route': (rc) =>
    mapRoutes(rc, (r) => ({
      ...r,
      typedPerFilterConfig: {
        'envoy.filters.http.ext_authz': {
          '@type': 'type.googleapis.com/envoy.extensions.filters.http.ext_authz.v3.ExtAuthzPerRoute',
          checkSettings: { contextExtensions: { descriptor_id: String(r['name']) } },
        },
      },
    })),
  'regex-paths': (rc) =>
    mapRoutes(rc, (r) => {
      const m = r['match'] as ProtoObject;
      const p = m['pathSeparatedPrefix'] as string | undefined;
      if (p === undefined) return r;
      const rest = without(m, ['pathSeparatedPrefix']);
      return { ...r, match: { ...rest, safeRegex: { regex: `${p.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}(/.*)?` } } };
    }),
};

/** The generated `oxds-http` route configuration of n bench descriptors. */
function generated(n: number): RouteConfig {
  const c = compile(benchView(n), {}, {});
  const rc = c.envoy.set.routes.find((r) => r['name'] === ROUTE_CONFIG);
  if (!rc) throw new Error(`no route configuration ${ROUTE_CONFIG}`);
  return rc as RouteConfig;
}

/** `rc` with one route of vhost 1 changed (its timeout), generation `gen`. */
function changed(rc: RouteConfig, gen: number): RouteConfig {
  const vhs = [...rc.virtualHosts];
  const vh = vhs[1] as VirtualHost;
  const routes = vh.routes.map((r) =>
    r['route'] !== undefined ? { ...r, route: { ...(r['route'] as ProtoObject), timeout: { seconds: 30 + gen } } } : r,
  );
  vhs[1] = { ...vh, routes };
  return { ...rc, virtualHosts: vhs };
}

function discoveryResponse(rc: RouteConfig, version: number): Uint8Array {
  return encodeObject('envoy.service.discovery.v3.DiscoveryResponse', {
    versionInfo: String(version),
    typeUrl: TYPE_URLS.route,
    resources: [{ '@type': TYPE_URLS.route, ...rc }],
  });
}

function bootstrap(dir: string): string {
  const rds = path.join(dir, 'rds.pb');
  return `node: {id: bench, cluster: bench}
admin: {address: {socket_address: {address: 127.0.0.1, port_value: 0}}}
static_resources:
  listeners:
  - name: http
    address: {socket_address: {address: 127.0.0.1, port_value: 0}}
    filter_chains:
    - filters:
      - name: envoy.filters.network.http_connection_manager
        typed_config:
          "@type": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
          stat_prefix: bench
          rds:
            route_config_name: ${ROUTE_CONFIG}
            config_source:
              resource_api_version: V3
              path_config_source: {path: ${rds}, watched_directory: {path: ${dir}}}
          http_filters:
          - name: envoy.filters.http.router
            typed_config: {"@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router}
`;
}

/** Envoy's CPU time (user + system), ms. */
function cpuMs(pid: number): number {
  const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(f[11]) + Number(f[12])) * TICK_MS;
}

function writeAtomically(dir: string, bytes: Uint8Array): void {
  const tmp = path.join(dir, 'rds.pb.tmp');
  fs.writeFileSync(tmp, bytes);
  fs.renameSync(tmp, path.join(dir, 'rds.pb'));
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

interface Row {
  variant: string;
  hosts: number;
  bytes: number;
  changeCpuMs: ReturnType<typeof stats>;
  floorCpuMs: ReturnType<typeof stats>;
  perVhostUs: number;
  rejected: number;
}

async function measure(bin: string, variant: string, n: number, base: RouteConfig): Promise<Row> {
  const shape = VARIANTS[variant];
  if (!shape) throw new Error(`unknown variant ${variant}`);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'oxds-route-cost-'));
  const rc = shape(base);
  const first = discoveryResponse(rc, 0);
  writeAtomically(dir, first);
  const envoy = await EnvoyProcess.start(bin, bootstrap(dir), { dir });
  const stat = `http.bench.rds.${ROUTE_CONFIG}.update_success`;
  try {
    await envoy.ready(120_000);
    await eventually('first route table', async () => ((await envoy.stat(stat)) >= 1 ? true : undefined), 120_000);
    const pid = envoy.child.pid as number;
    const change: number[] = [];
    const floor: number[] = [];
    for (let g = 1; g <= CHANGES; g++) {
      const bytes = discoveryResponse(changed(rc, g), g);
      await sleep(100);
      const before = await envoy.stat(stat);
      const c0 = cpuMs(pid);
      writeAtomically(dir, bytes);
      await eventually('update applied', async () => ((await envoy.stat(stat)) > before ? true : undefined), 60_000);
      await sleep(100);
      change.push(cpuMs(pid) - c0);
      // Floor: the same polling and wait without a change.
      const f0 = cpuMs(pid);
      await envoy.stat(stat);
      await sleep(100);
      floor.push(cpuMs(pid) - f0);
    }
    const rejected = await envoy.stat(`http.bench.rds.${ROUTE_CONFIG}.update_rejected`);
    const cs = stats(change);
    const fs_ = stats(floor);
    return {
      variant,
      hosts: n,
      bytes: first.length,
      changeCpuMs: cs,
      floorCpuMs: fs_,
      perVhostUs: ((cs.mean - fs_.mean) * 1000) / n,
      rejected,
    };
  } finally {
    await envoy.stop();
    if (process.env['BENCH_KEEP'] === undefined) fs.rmSync(dir, { recursive: true, force: true });
  }
}

async function main(): Promise<void> {
  const found = findEnvoy();
  if ('missing' in found) {
    console.log(`skipped: no Envoy (${found.missing}); ${ENVOY_HOWTO}`);
    return;
  }
  const variants = (process.env['BENCH_ROUTE_COST_VARIANTS'] ?? Object.keys(VARIANTS).join(',')).split(',');
  const rows: Row[] = [];
  console.log(
    `load ${os
      .loadavg()
      .map((l) => l.toFixed(2))
      .join(' ')}, ${os.cpus().length} cores, ${CHANGES} changes`,
  );
  for (const n of HOSTS) {
    const base = generated(n);
    for (const v of variants) {
      const row = await measure(found.bin, v, n, base);
      rows.push(row);
      console.log(
        `${String(n).padStart(5)} vhosts ${v.padEnd(26)} ${(row.bytes / 1024).toFixed(0).padStart(6)} KiB  ` +
          `change CPU mean ${row.changeCpuMs.mean.toFixed(1)} ms (p50 ${row.changeCpuMs.p50.toFixed(0)}, ` +
          `p99 ${row.changeCpuMs.p99.toFixed(0)}), floor ${row.floorCpuMs.mean.toFixed(1)} ms, ` +
          `${row.perVhostUs.toFixed(1)} µs/vhost, rejected ${row.rejected}, load ${os.loadavg()[0]?.toFixed(2)}`,
      );
    }
  }
  const out = path.join('bench', 'results');
  fs.mkdirSync(out, { recursive: true });
  fs.writeFileSync(path.join(out, 'envoy-route-cost.json'), JSON.stringify(rows, null, 2));
}

await main();
