// Grafana over Prometheus, for real: a real Prometheus (Debian's `prometheus`, loopback, free port,
// tmp storage) scrapes our admin /metrics while traffic flows through a real Envoy; every query of
// the Grafana dashboard and every alert expression of manifests/prometheus returns series through
// Prometheus' HTTP API, the rules load healthy, and `promtool check rules` passes.
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test, type TestContext } from 'vitest';
import YAML from 'yaml';
import { descriptorYaml, envoyTest, eventually, startGateway } from '../helpers/envoy.js';
import { startHttpBackends, type HttpBackend } from '../helpers/http-backends.js';
import { freePort } from '../helpers/redis.js';
import { XDS_CLUSTER_NAME } from '../../src/envoy/bootstrap.js';

const RULES = path.resolve('manifests/prometheus/otoroshi-xds-alerts.yaml');
const DASHBOARD = path.resolve('manifests/grafana/otoroshi-xds-dashboard.json');
const HOWTO = "install Debian's `prometheus` package (apt-get install prometheus; .ci/run does)";

function hasPrometheus(): boolean {
  return (
    spawnSync('prometheus', ['--version'], { stdio: 'ignore' }).status === 0 &&
    spawnSync('promtool', ['--version'], { stdio: 'ignore' }).status === 0
  );
}

/** Whether Prometheus is installed; else the test is skipped with how to get it (a failure in CI). */
function prometheusOrSkip(t: TestContext): boolean {
  if (hasPrometheus()) return true;
  if (process.env.CI === 'true') assert.fail(`CI=true and prometheus/promtool are missing; ${HOWTO}`);
  t.skip(`prometheus/promtool missing; ${HOWTO}`);
  return false;
}

/** Grafana variables → what a user selecting "All" gets. */
export function grafanaToPromql(expr: string): string {
  return expr.replaceAll('$__rate_interval', '1m').replaceAll('$job', '.*').replaceAll('$instance', '.*');
}

/**
 * An alert expression with its thresholds turned into `bool` comparisons: it returns a 0/1 series
 * for every series the alert watches, so "returns series" means "the alert can see its metrics".
 */
export function alertToSeriesQuery(expr: string): string {
  return expr.replace(/(==|!=|>=|<=|>|<)(\s*)(?=[0-9(])/g, '$1 bool$2');
}

function dashboardQueries(): { title: string; expr: string }[] {
  const d = JSON.parse(fs.readFileSync(DASHBOARD, 'utf8')) as {
    panels?: { title?: string; targets?: { expr?: string }[] }[];
  };
  return (d.panels ?? []).flatMap((p) =>
    (p.targets ?? []).flatMap((t) => (t.expr ? [{ title: p.title ?? '', expr: grafanaToPromql(t.expr) }] : [])),
  );
}

function alertQueries(): { title: string; expr: string }[] {
  const doc = YAML.parse(fs.readFileSync(RULES, 'utf8')) as {
    groups: { rules: { alert?: string; record?: string; expr: string }[] }[];
  };
  return doc.groups.flatMap((g) =>
    g.rules.map((r) => ({ title: r.alert ?? r.record ?? '', expr: alertToSeriesQuery(r.expr) })),
  );
}

interface Prometheus {
  url: string;
  query(q: string): Promise<unknown[]>;
  stop(): Promise<void>;
}

async function startPrometheus(adminPort: number): Promise<Prometheus> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'oxds-prom-'));
  const port = await freePort();
  const cfg = {
    global: { scrape_interval: '1s', evaluation_interval: '1s' },
    rule_files: [RULES],
    scrape_configs: [
      { job_name: 'otoroshi-xds', metrics_path: '/metrics', static_configs: [{ targets: [`127.0.0.1:${adminPort}`] }] },
    ],
  };
  fs.writeFileSync(path.join(dir, 'prometheus.yml'), YAML.stringify(cfg));
  const child = spawn(
    'prometheus',
    [
      `--config.file=${path.join(dir, 'prometheus.yml')}`,
      `--storage.tsdb.path=${path.join(dir, 'data')}`,
      `--web.listen-address=127.0.0.1:${port}`,
      '--log.level=warn',
    ],
    { stdio: ['ignore', 'ignore', 'pipe'] },
  );
  let log = '';
  child.stderr?.on('data', (d: Buffer) => (log = (log + d.toString()).slice(-8000)));
  let exited: number | null | undefined;
  child.once('exit', (c) => (exited = c));
  const url = `http://127.0.0.1:${port}`;
  const stop = async (): Promise<void> => {
    if (exited === undefined) {
      const done = new Promise<void>((r) => child.once('exit', () => r()));
      child.kill('SIGTERM');
      const k = setTimeout(() => child.kill('SIGKILL'), 10_000);
      await done;
      clearTimeout(k);
    }
    fs.rmSync(dir, { recursive: true, force: true });
  };
  await eventually(
    'Prometheus ready',
    async () => {
      if (exited !== undefined) throw new Error(`prometheus exited with ${String(exited)}: ${log}`);
      const r = await fetch(`${url}/-/ready`).catch(() => undefined);
      return r?.status === 200 ? true : undefined;
    },
    60_000,
  ).catch(async (e: unknown) => {
    await stop();
    throw e;
  });
  return {
    url,
    async query(q) {
      const r = await fetch(`${url}/api/v1/query?query=${encodeURIComponent(q)}`);
      const j = (await r.json()) as { status: string; error?: string; data?: { result: unknown[] } };
      if (j.status !== 'success') throw new Error(`${q}: ${j.error ?? r.status}`);
      return j.data?.result ?? [];
    },
    stop,
  };
}

test('promtool check rules passes on manifests/prometheus', (t) => {
  if (!prometheusOrSkip(t)) return;
  const r = spawnSync('promtool', ['check', 'rules', RULES], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stdout + r.stderr);
  assert.match(r.stdout, /SUCCESS: \d+ rules found/);
});

envoyTest(
  'Prometheus scrapes /metrics during Envoy traffic: every dashboard query and alert expression returns series',
  async (t, bin) => {
    if (!prometheusOrSkip(t)) return;
    const [pub, priv] = (await startHttpBackends(['public', 'private'])) as [HttpBackend, HttpBackend];
    t.onTestFinished(async () => {
      await Promise.all([pub.stop(), priv.stop()]);
    });
    const files = {
      'd.yaml':
        descriptorYaml('public', `hosts: [pub.oto.tools]\ntargets: [{url: "http://127.0.0.1:${pub.port}"}]`) +
        `apiVersion: proxy.otoroshi.io/v1alpha1
kind: ServiceDescriptor
metadata: {name: private, namespace: default}
spec:
  forceHttps: false
  groups: [prom-group]
  hosts: [priv.oto.tools]
  targets: [{url: "http://127.0.0.1:${priv.port}"}]
---
apiVersion: proxy.otoroshi.io/v1alpha1
kind: ApiKey
metadata: {name: key, namespace: default}
spec:
  clientId: prom-client
  clientSecret: prom-secret
  authorizedEntities: [prom-group]
---
apiVersion: proxy.otoroshi.io/v1alpha1
kind: Certificate
metadata: {name: pub-cert, namespace: default}
spec:
  csr: {hosts: [pub.oto.tools], subject: CN=pub.oto.tools}
`,
    };
    const gw = await startGateway(t, bin, { files, flags: { envoyAlsCluster: XDS_CLUSTER_NAME } });
    const prom = await startPrometheus(gw.server.adminPort);
    t.onTestFinished(() => prom.stop());
    const key = { 'otoroshi-client-id': 'prom-client', 'otoroshi-client-secret': 'prom-secret' };
    assert.equal((await gw.request({ host: 'priv.oto.tools', headers: key })).status, 200);
    assert.equal((await gw.request({ host: 'priv.oto.tools' })).status, 400); // Otoroshi: no apikey → 400

    const queries = [...dashboardQueries(), ...alertQueries()];
    assert.ok(queries.length >= 40, `${queries.length} queries`);
    // Traffic until every query has series (rates need two scrapes of a series).
    const empty = async (): Promise<string[]> => {
      const out: string[] = [];
      for (const q of queries) if ((await prom.query(q.expr)).length === 0) out.push(`${q.title}: ${q.expr}`);
      return out;
    };
    let last: string[] = [];
    await eventually(
      'every dashboard query and alert expression to return series',
      async () => {
        await Promise.all([
          gw.request({ host: 'pub.oto.tools', path: '/p' }),
          gw.request({ host: 'priv.oto.tools', headers: key }),
          gw.request({ host: 'priv.oto.tools' }),
        ]);
        last = await empty();
        return last.length === 0 ? true : undefined;
      },
      90_000,
    ).catch((e: unknown) => {
      throw new Error(`${(e as Error).message}\nstill empty:\n${last.join('\n')}`);
    });

    // The rules Prometheus loaded are the file's, and every one evaluates without error.
    const rules = (await (await fetch(`${prom.url}/api/v1/rules`)).json()) as {
      data: { groups: { rules: { name: string; health: string; lastError?: string }[] }[] };
    };
    const loaded = rules.data.groups.flatMap((g) => g.rules);
    assert.equal(loaded.length, alertQueries().length);
    await eventually('every rule evaluated healthy', async () => {
      const r = (await (await fetch(`${prom.url}/api/v1/rules`)).json()) as typeof rules;
      const bad = r.data.groups.flatMap((g) => g.rules).filter((x) => x.health !== 'ok');
      return bad.length === 0 ? true : undefined;
    });
  },
);
