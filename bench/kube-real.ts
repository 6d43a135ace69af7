// `npm run bench:kube`: N ServiceDescriptors applied through a real kube-apiserver (scripts/kube-up.sh)
// to one control plane replica (`serve --source kubernetes`, ServiceAccount token): time from
// `kubectl apply` until an xDS client (SotW, Envoy-like) holds all N hosts, status writes per
// object, then the replica's API requests per minute at rest (watch-only: no polling), counted
// from the API server's audit log. Floor from the same run: `kubectl get` of the N objects.
// Env: BENCH_KUBE_N=1000  BENCH_KUBE_REST_S=60
import fs from 'node:fs';
import path from 'node:path';
import { envInt } from './gen.js';
import {
  XdsWatcher,
  applyManifests,
  realKubeSkip,
  startControlPlane,
  startRealKube,
} from '../test/helpers/kube-real.js';

const N = envInt('BENCH_KUBE_N', 1000);
const REST_S = envInt('BENCH_KUBE_REST_S', 60);
const NS = 'otoroshi-xds';

async function until(what: string, cond: () => boolean | Promise<boolean>, ms: number): Promise<void> {
  const end = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > end) throw new Error(`timed out: ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

type Kube = Awaited<ReturnType<typeof startRealKube>>;
type AuditEvent = ReturnType<Kube['auditEvents']>[number];

/** The N ServiceDescriptors as one multi-document file in `dir`. */
function writeDescriptors(dir: string): string {
  const docs = Array.from({ length: N }, (_, i) =>
    JSON.stringify({
      apiVersion: 'proxy.otoroshi.io/v1alpha1',
      kind: 'ServiceDescriptor',
      metadata: { name: `svc-${i}`, namespace: 'default' },
      spec: {
        hosts: [`svc-${i}.bench.local`],
        paths: [`/api/v1/svc-${i}`],
        targets: [{ url: `http://127.0.0.1:${10000 + (i % 1000)}` }],
        publicPatterns: ['/.*'],
        forceHttps: false,
      },
    }),
  );
  const file = path.join(dir, 'descriptors.yaml');
  fs.writeFileSync(file, docs.join('\n---\n'));
  return file;
}

async function untilEveryStatus(kube: Kube): Promise<void> {
  const states = 'jsonpath={range .items[*]}{.status.state}{"\\n"}{end}';
  await until(
    'every status written',
    async () => {
      const out = await kube.kubectlOk(['get', 'service-descriptors', '-n', 'default', '-o', states]);
      return out.split('\n').filter((l) => l === 'valid').length >= N;
    },
    600_000,
  );
}

/** What the replica asks of the API server at rest, REST_S seconds (lease renewals and watch restarts only). */
async function atRest(ours: () => AuditEvent[]): Promise<{ perMin: number; byVerb: Record<string, number> }> {
  const before = ours().length;
  const r0 = Date.now();
  await new Promise((r) => setTimeout(r, REST_S * 1000));
  const rest = ours().slice(before);
  const perMin = (rest.length * 60_000) / (Date.now() - r0);
  const byVerb: Record<string, number> = {};
  for (const e of rest) {
    const k = `${e.verb} ${e.objectRef?.resource ?? ''}`;
    byVerb[k] = (byVerb[k] ?? 0) + 1;
  }
  return { perMin, byVerb };
}

async function main(): Promise<void> {
  const skip = realKubeSkip();
  if (skip) {
    console.log(skip);
    return;
  }
  const kube = await startRealKube();
  try {
    await applyManifests(kube);
    const sa = await kube.serviceAccountKubeconfig(NS, 'otoroshi-xds');
    const cp = await startControlPlane({
      name: 'bench',
      kubeconfig: sa,
      leaseNamespace: NS,
      args: ['--log-level', 'warn', '--lease-duration-seconds', '15'],
    });
    const watcher = new XdsWatcher(cp.xdsPort, 'bench-envoy');
    try {
      const file = writeDescriptors(kube.dir);
      const saUser = `system:serviceaccount:${NS}:otoroshi-xds`;
      const ours = (): ReturnType<typeof kube.auditEvents> =>
        kube.auditEvents().filter((e) => e.user.username === saUser);
      const t0 = performance.now();
      await kube.kubectlOk(['apply', '--server-side', '-f', file]);
      const applied = performance.now() - t0;
      const hosts = (): number => (watcher.text().match(/svc-\d+\.bench\.local/g) ?? []).length;
      await until(
        'all hosts in xDS',
        () => new Set(watcher.text().match(/svc-\d+\.bench\.local/g) ?? []).size >= N,
        600_000,
      );
      const routable = performance.now() - t0;
      const statusPatches = (): number =>
        ours().filter((e) => e.verb === 'patch' && e.objectRef?.subresource === 'status').length;
      await untilEveryStatus(kube);
      const statused = performance.now() - t0;
      const writes = statusPatches();
      const f0 = performance.now();
      await kube.kubectlOk(['get', 'service-descriptors', '-n', 'default', '-o', 'name']);
      const floor = performance.now() - f0;
      // at rest: what the replica asks of the API server (lease renewals and watch restarts only)
      const { perMin, byVerb } = await atRest(ours);
      const result = {
        n: N,
        applyMs: Math.round(applied),
        allInXdsMs: Math.round(routable),
        allStatusesMs: Math.round(statused),
        statusWritesPerObject: writes / N,
        floorKubectlGetMs: Math.round(floor),
        restRequestsPerMinute: Math.round(perMin * 10) / 10,
        restByVerb: byVerb,
        hostsSeen: hosts(),
        load: fs.readFileSync('/proc/loadavg', 'utf8').trim(),
      };
      console.log(JSON.stringify(result, null, 2));
      fs.mkdirSync('bench/results', { recursive: true });
      fs.writeFileSync('bench/results/kube-real.json', JSON.stringify(result, null, 2));
    } finally {
      watcher.close();
      await cp.stop();
    }
  } finally {
    await kube.stop();
  }
}

await main();
