// Operations artifacts: the Grafana dashboard and the Prometheus alert rules reference only metrics
// (and labels) the server exports; `otoroshi-xds status` formats /debug/proxies like
// `istioctl proxy-status` and reads it from a real admin app.
import { test } from 'vitest';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import net from 'node:net';
import { Writable } from 'node:stream';
import YAML from 'yaml';
import { createMetrics } from '../src/metrics.js';
import { createTrafficMetrics } from '../src/als.js';
import { buildAdminApp } from '../src/admin/app.js';
import { TYPE_URLS } from '../proto/loader.js';
import {
  formatAge,
  formatProxyTable,
  normalizeAdminUrl,
  proxyRows,
  runStatus,
  TABLE_HEADERS,
  typeCell,
} from '../src/status-command.js';
import type { NodeStatus, TypeStatus } from '../src/xds/node-status.js';

const DASHBOARD = 'manifests/grafana/otoroshi-xds-dashboard.json';
const ALERTS = 'manifests/prometheus/otoroshi-xds-alerts.yaml';

// ---------------------------------------------------------------------------------------------
// PromQL: metric names and label names used by an expression.

/** Series Prometheus itself produces for every scrape target. */
const PROMETHEUS_SERIES: Record<string, string[]> = { up: [], scrape_duration_seconds: [], scrape_samples_scraped: [] };
/** Target labels Prometheus attaches to every scraped series. */
const TARGET_LABELS = ['job', 'instance'];
const KEYWORDS = new Set([
  'and',
  'or',
  'unless',
  'bool',
  'offset',
  'by',
  'without',
  'on',
  'ignoring',
  'group_left',
  'group_right',
  'inf',
  'nan',
  'atan2',
]);

interface Catalog {
  /** metric name → {type, labelNames} */
  metrics: Map<string, { type: string; labels: string[] }>;
}

async function catalog(): Promise<Catalog> {
  const { registry } = createMetrics(); // default process/nodejs metrics included
  // access-log metrics (same registry in main.ts)
  createTrafficMetrics(registry, () => ({ descriptors: new Set(), apikeys: new Set() }), true);
  const metrics = new Map<string, { type: string; labels: string[] }>();
  for (const m of await registry.getMetricsAsJSON()) {
    const single = registry.getSingleMetric(m.name) as unknown as { labelNames?: string[] } | undefined;
    metrics.set(m.name, { type: String(m.type), labels: [...(single?.labelNames ?? [])] });
  }
  return { metrics };
}

/** Resolves a series name (`x_bucket`, `x_count`, `x_sum` of a histogram) to its labels, or undefined. */
function resolveSeries(cat: Catalog, name: string): string[] | undefined {
  const exact = cat.metrics.get(name);
  if (exact) return exact.labels;
  const m = /^(.*)_(bucket|count|sum)$/.exec(name);
  if (m) {
    const base = cat.metrics.get(m[1] ?? '');
    if (base && (base.type === 'histogram' || base.type === 'summary')) {
      if (m[2] === 'bucket' && base.type !== 'histogram') return undefined;
      return m[2] === 'bucket' ? [...base.labels, 'le'] : base.labels;
    }
  }
  return PROMETHEUS_SERIES[name];
}

const IDENT = String.raw`[a-zA-Z_:][a-zA-Z0-9_:]*`;

/** Names of the series an expression selects (functions, keywords, label names, durations removed). */
export function metricNames(expr: string): string[] {
  const s = expr
    .replace(/"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|`[^`]*`/g, '""')
    .replace(/\{[^}]*\}/g, ' ')
    .replace(/\[[^\]]*\]/g, ' ')
    .replace(/\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)/g, ' ')
    .replace(/\$\{?\w+\}?/g, ' ');
  const out = new Set<string>();
  for (const m of s.matchAll(new RegExp(String.raw`(?<![\w.:$])(${IDENT})(\s*\()?`, 'g'))) {
    const name = m[1] ?? '';
    if (m[2] || KEYWORDS.has(name.toLowerCase())) continue; // a function call, or an operator
    out.add(name);
  }
  return [...out].sort();
}

/** Problems with one expression: unknown series, unknown labels in matchers or grouping clauses. */
function checkExpr(cat: Catalog, expr: string): string[] {
  const problems: string[] = [];
  const allLabels = new Set<string>(TARGET_LABELS);
  for (const name of metricNames(expr)) {
    const labels = resolveSeries(cat, name);
    if (!labels) problems.push(`unknown metric ${name}`);
    else for (const l of labels) allLabels.add(l);
  }
  // Label matchers attached to a series: name{label="..."}.
  for (const m of expr.matchAll(new RegExp(String.raw`(${IDENT})\s*\{([^}]*)\}`, 'g'))) {
    const labels = resolveSeries(cat, m[1] ?? '');
    if (!labels) continue;
    const allowed = new Set([...labels, ...TARGET_LABELS, '__name__']);
    const body = (m[2] ?? '').replace(/"(?:[^"\\]|\\.)*"/g, '""');
    for (const lm of body.matchAll(/([a-zA-Z_]\w*)\s*(=~|!~|!=|=)/g)) {
      if (!allowed.has(lm[1] ?? '')) problems.push(`${m[1]} has no label ${lm[1]}`);
    }
  }
  // Grouping labels must exist on some series of the expression.
  for (const g of expr.matchAll(/\b(by|without|on|ignoring|group_left|group_right)\s*\(([^)]*)\)/g)) {
    for (const l of (g[2] ?? '')
      .split(',')
      .map((x) => x.trim())
      .filter(Boolean)) {
      if (!allLabels.has(l)) problems.push(`${g[1]} (${l}): no series of the expression has label ${l}`);
    }
  }
  return problems;
}

test('ops: the PromQL checker finds names and rejects unknown metrics and labels', async () => {
  const cat = await catalog();
  assert.deepEqual(
    metricNames(
      'histogram_quantile(0.99, sum by (type, le) ' +
        '(rate(oxds_xds_push_duration_seconds_bucket{job=~"$job"}[$__rate_interval])))',
    ),
    ['oxds_xds_push_duration_seconds_bucket'],
  );
  assert.deepEqual(
    metricNames(
      'sum(rate(a_total{x="y or z"}[5m] offset 1h)) / clamp_min(sum(rate(b_total[5m])), 1e-9) > 0 and on (job) up == 0',
    ),
    ['a_total', 'b_total', 'up'],
  );
  assert.deepEqual(checkExpr(cat, 'sum by (type) (rate(oxds_xds_nacks_total{type="Cluster"}[5m]))'), []);
  assert.deepEqual(checkExpr(cat, 'rate(oxds_snapshot_build_duration_seconds_count{result="error"}[5m])'), []);
  assert.deepEqual(checkExpr(cat, 'oxds_certificates_expiry_timestamp_seconds - time() < 7 * 86400'), []);
  assert.deepEqual(checkExpr(cat, 'oxds_certificate_expiry_seconds - time() < 7 * 86400'), [
    'unknown metric oxds_certificate_expiry_seconds',
  ]);
  assert.deepEqual(checkExpr(cat, 'rate(oxds_xds_pushes_total{node="x"}[5m])'), [
    'oxds_xds_pushes_total has no label node',
  ]);
  assert.deepEqual(checkExpr(cat, 'sum by (reason) (rate(oxds_quota_exceeded_total[5m]))'), [
    'by (reason): no series of the expression has label reason',
  ]);
  assert.deepEqual(checkExpr(cat, 'rate(oxds_quota_exceeded_total_bucket[5m])'), [
    'unknown metric oxds_quota_exceeded_total_bucket',
  ]);
});

interface Panel {
  type: string;
  title: string;
  targets?: Array<{ expr?: string; datasource?: { uid?: string } }>;
  panels?: Panel[];
  gridPos?: { h: number; w: number; x: number; y: number };
  datasource?: { uid?: string };
}

function allPanels(ps: Panel[]): Panel[] {
  return ps.flatMap((p) => [p, ...allPanels(p.panels ?? [])]);
}

test('ops: the Grafana dashboard is valid JSON and queries only exported metrics and labels', async () => {
  const cat = await catalog();
  const dash = JSON.parse(fs.readFileSync(DASHBOARD, 'utf8')) as {
    schemaVersion: number;
    uid: string;
    title: string;
    __inputs: Array<{ name: string; pluginId: string }>;
    panels: Panel[];
    templating: { list: Array<{ name: string; definition?: string; query?: { query?: string } | string }> };
  };
  assert.ok(dash.schemaVersion >= 36 && dash.schemaVersion <= 41, `schemaVersion ${dash.schemaVersion}`);
  assert.ok(dash.uid && dash.title);
  assert.deepEqual(
    dash.__inputs.map((i) => [i.name, i.pluginId]),
    [['DS_PROMETHEUS', 'prometheus']],
  );

  const panels = allPanels(dash.panels);
  const rows = panels.filter((p) => p.type === 'row').map((p) => p.title);
  assert.deepEqual(rows, [
    'xDS health',
    'ext_authz',
    'Quotas',
    'Process',
    'Traffic by API (Envoy access logs, --envoy-als-cluster)',
    'Certificates',
  ]);
  const ids = new Set<number>();
  for (const p of dash.panels as Array<Panel & { id: number }>) {
    assert.ok(!ids.has(p.id), `duplicate panel id ${p.id}`);
    ids.add(p.id);
    assert.ok(p.gridPos && p.gridPos.x + p.gridPos.w <= 24, `${p.title}: gridPos`);
  }

  const used = new Set<string>();
  const problems: string[] = [];
  let exprs = 0;
  for (const p of panels) {
    if (p.type === 'row') continue;
    assert.equal(p.datasource?.uid, '${DS_PROMETHEUS}', `${p.title}: datasource`);
    assert.ok(p.targets && p.targets.length > 0, `${p.title}: no query`);
    for (const t of p.targets) {
      assert.ok(t.expr, `${p.title}: target without expr`);
      exprs++;
      for (const n of metricNames(t.expr)) used.add(n);
      for (const e of checkExpr(cat, t.expr)) problems.push(`${p.title}: ${e} in ${t.expr}`);
    }
  }
  for (const v of dash.templating.list) {
    const q = typeof v.query === 'string' ? v.query : (v.query?.query ?? v.definition ?? '');
    const m = /^label_values\(\s*(.+),\s*(\w+)\s*\)$/.exec(q);
    assert.ok(m, `variable ${v.name}: ${q}`);
    for (const e of checkExpr(cat, m[1] ?? '')) problems.push(`variable ${v.name}: ${e}`);
    const series = metricNames(m[1] ?? '');
    assert.equal(series.length, 1);
    assert.ok(
      [...(resolveSeries(cat, series[0] ?? '') ?? []), ...TARGET_LABELS].includes(m[2] ?? ''),
      `variable ${v.name}: label ${m[2]}`,
    );
  }
  assert.deepEqual(problems, []);
  assert.ok(exprs >= 20, `${exprs} queries`);
  // The panels the issue asks for are there.
  for (const n of [
    'oxds_xds_connected_proxies',
    'oxds_xds_pushes_total',
    'oxds_xds_push_duration_seconds_bucket',
    'oxds_xds_nacks_total',
    'oxds_snapshot_build_duration_seconds_bucket',
    'oxds_config_objects',
    'oxds_authz_checks_total',
    'oxds_authz_check_duration_seconds_bucket',
    'oxds_quota_exceeded_total',
    'oxds_quota_store_errors_total',
    'process_cpu_seconds_total',
    'process_resident_memory_bytes',
    'nodejs_eventloop_lag_p99_seconds',
  ]) {
    assert.ok(used.has(n), `dashboard does not use ${n}`);
  }
});

test('ops: the Prometheus alert rules are well-formed and use only exported metrics and labels', async () => {
  const cat = await catalog();
  const doc = YAML.parse(fs.readFileSync(ALERTS, 'utf8')) as {
    groups: Array<{
      name: string;
      rules: Array<{
        alert?: string;
        expr: string;
        for?: string;
        labels?: Record<string, string>;
        annotations?: Record<string, string>;
      }>;
    }>;
  };
  assert.ok(Array.isArray(doc.groups) && doc.groups.length > 0);
  const problems: string[] = [];
  const alerts = new Map<string, string>();
  for (const g of doc.groups) {
    assert.ok(g.name);
    for (const r of g.rules) {
      assert.ok(r.alert, `${g.name}: a rule without alert name`);
      assert.ok(!alerts.has(r.alert), `duplicate alert ${r.alert}`);
      alerts.set(r.alert, r.expr);
      assert.ok(typeof r.expr === 'string' && r.expr.trim(), `${r.alert}: expr`);
      assert.match(r.for ?? '0s', /^\d+[smh]$/, `${r.alert}: for`);
      assert.ok(['critical', 'warning', 'info'].includes(r.labels?.severity ?? ''), `${r.alert}: severity`);
      assert.ok(r.annotations?.summary && r.annotations.description, `${r.alert}: summary/description`);
      for (const e of checkExpr(cat, r.expr)) problems.push(`${r.alert}: ${e}`);
    }
  }
  assert.deepEqual(problems, []);
  const uses = (alert: string, metric: string): void => {
    const expr = alerts.get(alert);
    assert.ok(expr, `missing alert ${alert}`);
    assert.ok(metricNames(expr).includes(metric), `${alert} does not use ${metric}`);
  };
  uses('OtoroshiXdsNacks', 'oxds_xds_nacks_total');
  uses('OtoroshiXdsSnapshotBuildFailing', 'oxds_snapshot_build_duration_seconds_count');
  uses('OtoroshiXdsQuotaStoreDown', 'oxds_quota_store_errors_total');
  uses('OtoroshiXdsQuotaExhausted', 'oxds_quota_exceeded_total');
  uses('OtoroshiXdsNoConnectedProxies', 'oxds_xds_connected_proxies');
  uses('OtoroshiXdsAuthzLatencyHigh', 'oxds_authz_check_duration_seconds_bucket');
  uses('OtoroshiXdsControlPlaneDown', 'up');
});

// ---------------------------------------------------------------------------------------------
// `otoroshi-xds status`

const NOW = new Date('2025-01-01T12:00:00.000Z');

function ts(partial: Partial<TypeStatus> & { typeUrl: string }): TypeStatus {
  return { subscribed: [], wildcard: true, resourceCount: 1, ...partial };
}

function fixtures(): NodeStatus[] {
  const base = {
    service: 'ads' as const,
    cluster: 'c',
    userAgentName: 'envoy',
    userAgentVersion: '1.31',
    peer: '127.0.0.1:5000',
  };
  return [
    {
      ...base,
      streamId: 3,
      streamKind: 'delta',
      nodeId: 'zz-stale',
      nodeType: 'envoy',
      connectedAt: new Date(NOW.getTime() - 3 * 3600_000 - 5 * 60_000).toISOString(),
      pending: false,
      types: {
        [TYPE_URLS.cluster]: ts({ typeUrl: TYPE_URLS.cluster, sentVersion: 'b-7', ackedVersion: 'b-6' }),
        [TYPE_URLS.listener]: ts({ typeUrl: TYPE_URLS.listener, sentVersion: 'b-7' }),
        // NACK of an older version, the newer one not answered yet: STALE, not NACKED.
        [TYPE_URLS.route]: ts({
          typeUrl: TYPE_URLS.route,
          sentVersion: 'b-7',
          ackedVersion: 'b-5',
          lastNack: { version: 'b-6', nonce: '9', message: 'old', at: NOW.toISOString() },
        }),
      },
    },
    {
      ...base,
      streamId: 1,
      streamKind: 'sotw',
      nodeId: 'aa-synced',
      nodeType: 'envoy',
      connectedAt: new Date(NOW.getTime() - 42_000).toISOString(),
      pending: false,
      types: {
        [TYPE_URLS.cluster]: ts({ typeUrl: TYPE_URLS.cluster, sentVersion: 'b-7', ackedVersion: 'b-7' }),
        [TYPE_URLS.endpoint]: ts({
          typeUrl: TYPE_URLS.endpoint,
          wildcard: false,
          subscribed: ['default/web'],
          sentVersion: 'b-7',
          ackedVersion: 'b-7',
        }),
        [TYPE_URLS.listener]: ts({ typeUrl: TYPE_URLS.listener, sentVersion: 'b-7', ackedVersion: 'b-7' }),
        [TYPE_URLS.route]: ts({
          typeUrl: TYPE_URLS.route,
          wildcard: false,
          subscribed: ['oxds-http'],
          sentVersion: 'b-7',
          ackedVersion: 'b-7',
        }),
        // Subscribed, nothing sent yet.
        [TYPE_URLS.secret]: ts({ typeUrl: TYPE_URLS.secret, wildcard: false, subscribed: ['default/web-tls'] }),
      },
    },
    {
      ...base,
      streamId: 2,
      streamKind: 'sotw',
      nodeId: 'mm-nacked',
      nodeType: 'grpc',
      userAgentName: 'grpc-node-js',
      connectedAt: new Date(NOW.getTime() - 2 * 86400_000 - 3600_000).toISOString(),
      pending: false,
      types: {
        [TYPE_URLS.listener]: ts({
          typeUrl: TYPE_URLS.listener,
          sentVersion: 'b-8',
          ackedVersion: 'b-7',
          lastNack: {
            version: 'b-8',
            nonce: '4',
            message: 'Error adding/updating listener(s) oxds-http:\n Protocol constraint violation',
            at: NOW.toISOString(),
          },
        }),
        [TYPE_URLS.route]: ts({
          typeUrl: TYPE_URLS.route,
          sentVersion: 'b-8',
          ackedVersion: 'b-8',
          lastNack: { version: 'b-7', nonce: '2', message: 'earlier', at: NOW.toISOString() },
        }),
      },
    },
  ];
}

test('status: cells for synced, stale, nacked, not sent and not subscribed types', () => {
  assert.equal(typeCell(undefined), '-');
  assert.equal(typeCell(ts({ typeUrl: 'x', wildcard: false, subscribed: [] })), '-');
  assert.equal(typeCell(ts({ typeUrl: 'x' })), 'NOT SENT');
  assert.equal(typeCell(ts({ typeUrl: 'x', sentVersion: 'v2', ackedVersion: 'v2' })), 'SYNCED');
  assert.equal(typeCell(ts({ typeUrl: 'x', sentVersion: 'v2', ackedVersion: 'v1' })), 'STALE (sent v2, acked v1)');
  assert.equal(typeCell(ts({ typeUrl: 'x', sentVersion: 'v2' })), 'STALE (sent v2, acked -)');
  assert.equal(
    typeCell(
      ts({
        typeUrl: 'x',
        sentVersion: 'v2',
        ackedVersion: 'v1',
        lastNack: { version: 'v2', nonce: 'n', message: 'short', at: NOW.toISOString() },
      }),
    ),
    'NACKED: short',
  );
  const long = 'x'.repeat(39) + 'yz tail';
  assert.equal(
    typeCell(
      ts({
        typeUrl: 'x',
        sentVersion: 'v2',
        lastNack: { version: 'v2', nonce: 'n', message: long, at: NOW.toISOString() },
      }),
    ),
    `NACKED: ${'x'.repeat(39)}y…`,
  );

  assert.equal(formatAge(new Date(NOW.getTime() - 5_000).toISOString(), NOW), '5s');
  assert.equal(formatAge(new Date(NOW.getTime() - 192_000).toISOString(), NOW), '3m12s');
  assert.equal(formatAge(new Date(NOW.getTime() - 7500_000).toISOString(), NOW), '2h05m');
  assert.equal(formatAge(new Date(NOW.getTime() - 4 * 86400_000 - 3 * 3600_000).toISOString(), NOW), '4d3h');
  assert.equal(formatAge('garbage', NOW), '-');
  assert.equal(normalizeAdminUrl('127.0.0.1:18080/'), 'http://127.0.0.1:18080');
  assert.equal(normalizeAdminUrl('https://cp.example:443'), 'https://cp.example:443');
});

test('status: formatProxyTable gives one row per stream sorted by node id, like istioctl proxy-status', () => {
  const rows = proxyRows(fixtures(), { now: NOW });
  assert.deepEqual(TABLE_HEADERS, ['NODE ID', 'TYPE', 'STREAM', 'CDS', 'LDS', 'EDS', 'RDS', 'SDS', 'CONNECTED SINCE']);
  assert.deepEqual(rows, [
    ['aa-synced', 'envoy', 'sotw', 'SYNCED', 'SYNCED', 'SYNCED', 'SYNCED', 'NOT SENT', '42s'],
    ['mm-nacked', 'grpc', 'sotw', '-', 'NACKED: Error adding/updating listener(s) oxds-h…', '-', 'SYNCED', '-', '2d1h'],
    [
      'zz-stale',
      'envoy',
      'delta',
      'STALE (sent b-7, acked b-6)',
      'STALE (sent b-7, acked -)',
      '-',
      'STALE (sent b-7, acked b-5)',
      '-',
      '3h05m',
    ],
  ]);
  const table = formatProxyTable(fixtures(), { now: NOW });
  const lines = table.trimEnd().split('\n');
  assert.equal(lines.length, 4);
  assert.match(
    lines[0] ?? '',
    /^NODE ID\s{3,}TYPE\s{3,}STREAM\s{3,}CDS\s{3,}LDS\s{3,}EDS\s{3,}RDS\s{3,}SDS\s{3,}CONNECTED SINCE$/,
  );
  // Columns line up: every cell of a column starts at the same offset.
  const col = (line: string, text: string): number => [...line.slice(0, line.indexOf(text))].length;
  assert.equal(col(lines[1] ?? '', 'SYNCED'), col(lines[0] ?? '', 'CDS'));
  assert.equal(col(lines[3] ?? '', 'STALE (sent b-7, acked b-6)'), col(lines[0] ?? '', 'CDS'));
  assert.equal(col(lines[2] ?? '', 'NACKED'), col(lines[0] ?? '', 'LDS'));
  assert.ok(lines.every((l) => l === l.trimEnd()));
  assert.equal(formatProxyTable([]), 'no connected proxies\n');
  // An SDS-service stream is told apart from the ADS stream of the same node.
  const sds = { ...fixtures()[1]!, streamId: 9, service: 'sds' as const };
  assert.equal(proxyRows([sds], { now: NOW })[0]?.[2], 'sotw (sds)');
});

class Capture extends Writable {
  text = '';
  override _write(chunk: Buffer | string, _enc: BufferEncoding, cb: (err?: Error | null) => void): void {
    this.text += chunk.toString();
    cb();
  }
}

async function closedPort(): Promise<number> {
  const srv = net.createServer();
  await new Promise<void>((resolve) => srv.listen(0, '127.0.0.1', resolve));
  const port = (srv.address() as net.AddressInfo).port;
  await new Promise<void>((resolve) => srv.close(() => resolve()));
  return port;
}

test(
  'status: runStatus reads /debug/proxies of a real admin app; ' + '1 with a clear message when unreachable',
  async (t) => {
    const app = buildAdminApp({ ready: () => true, health: () => ({}), proxies: () => fixtures() });
    await app.listen({ port: 0, host: '127.0.0.1' });
    t.onTestFinished(() => app.close());
    const port = (app.server.address() as net.AddressInfo).port;

    const out = new Capture();
    assert.equal(await runStatus({ admin: `http://127.0.0.1:${port}`, watch: false, intervalMs: 2000, out }), 0);
    const lines = out.text.trimEnd().split('\n');
    assert.equal(lines.length, 4);
    assert.match(lines[0] ?? '', /^NODE ID\s+TYPE\s+STREAM\s+CDS\s+LDS\s+EDS\s+RDS\s+SDS\s+CONNECTED SINCE$/);
    assert.deepEqual(
      lines.slice(1).map((l) => l.split(/\s{3,}/).slice(0, 4)),
      [
        ['aa-synced', 'envoy', 'sotw', 'SYNCED'],
        ['mm-nacked', 'grpc', 'sotw', '-'],
        ['zz-stale', 'envoy', 'delta', 'STALE (sent b-7, acked b-6)'],
      ],
    );

    // Host:port without a scheme works too.
    const out2 = new Capture();
    assert.equal(await runStatus({ admin: `127.0.0.1:${port}`, watch: false, intervalMs: 2000, out: out2 }), 0);
    const noAge = (text: string): string[][] =>
      text
        .trimEnd()
        .split('\n')
        .map((l) => l.split(/\s{3,}/).slice(0, -1));
    assert.deepEqual(noAge(out2.text), noAge(out.text));

    // Nothing listening.
    const dead = await closedPort();
    const out3 = new Capture();
    const err3 = new Capture();
    assert.equal(
      await runStatus({ admin: `http://127.0.0.1:${dead}`, watch: false, intervalMs: 2000, out: out3, err: err3 }),
      1,
    );
    assert.equal(out3.text, '');
    assert.match(
      err3.text,
      new RegExp(
        `^otoroshi-xds status: cannot reach the otoroshi-xds admin API at http://127\\.0\\.0\\.1:${dead} \\(.*ECONNREFUSED.*\\); is the server running\\? Set --admin or OXDS_ADMIN_URL\\n$`,
      ),
    );

    // An admin app without /debug/proxies.
    const bare = buildAdminApp({ ready: () => true, health: () => ({}) });
    await bare.listen({ port: 0, host: '127.0.0.1' });
    t.onTestFinished(() => bare.close());
    const barePort = (bare.server.address() as net.AddressInfo).port;
    const out4 = new Capture();
    assert.equal(
      await runStatus({ admin: `http://127.0.0.1:${barePort}`, watch: false, intervalMs: 2000, out: out4 }),
      1,
    );
    assert.match(out4.text, /answered 404: this admin API does not serve \/debug\/proxies/);
  },
);

test(
  'status --watch: ' + 'redraws with an ANSI clear every interval, keeps going through errors, stops on signal',
  async (t) => {
    let calls = 0;
    let up = true;
    const app = buildAdminApp({
      ready: () => true,
      health: () => ({}),
      proxies: () => {
        calls++;
        if (!up) throw new Error('boom');
        return fixtures();
      },
    });
    await app.listen({ port: 0, host: '127.0.0.1' });
    t.onTestFinished(() => app.close());
    const port = (app.server.address() as net.AddressInfo).port;

    const out = new Capture();
    const ac = new AbortController();
    const frames = (): string[] => out.text.split('\x1b[2J\x1b[H').filter(Boolean);
    const sigintListeners = process.listenerCount('SIGINT');
    const run = runStatus({ admin: `http://127.0.0.1:${port}`, watch: true, intervalMs: 100, out, signal: ac.signal });
    assert.equal(process.listenerCount('SIGINT'), sigintListeners + 1);
    const until = async (pred: () => boolean): Promise<void> => {
      const deadline = Date.now() + 10_000;
      while (!pred()) {
        if (Date.now() > deadline) throw new Error(`timeout; output so far:\n${out.text}`);
        await new Promise((r) => setTimeout(r, 20));
      }
    };
    await until(() => frames().length >= 2);
    up = false;
    await until(() => frames().some((f) => f.includes('answered HTTP 500')));
    up = true;
    const n = frames().length;
    await until(() => frames().length > n && (frames().at(-1) ?? '').includes('zz-stale'));
    ac.abort();
    assert.equal(await run, 0);
    assert.equal(process.listenerCount('SIGINT'), sigintListeners);
    assert.ok(calls >= 4);
    const first = frames()[0] ?? '';
    assert.match(
      first,
      new RegExp(
        `^otoroshi-xds status — http://127\\.0\\.0\\.1:${port} — \\S+ — every 0\\.1s, Ctrl-C to quit\\n\\nNODE ID`,
      ),
    );
    assert.ok(out.text.startsWith('\x1b[2J\x1b[H'));
  },
);
