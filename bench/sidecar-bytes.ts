// Config size per sidecar (docs/mesh.md): N ServiceDescriptors (default 1,000) in 10 namespaces,
// each backed by a mesh Pod through a Service; one sidecar of namespace ns-0 receives its config
// unscoped (every descriptor), scoped to its namespace (`otoroshi.io/sidecar-egress: ./*`) and to one
// descriptor. Bytes are the encoded resources (what one xDS push carries, before gRPC framing);
// the gateway's config for the same model is printed for comparison.
//   npm run build --silent && node dist/bench/sidecar-bytes.js      (OXDS_BENCH_N=1000)
import type { KubeObject, StoredObject } from '../src/model/types.js';
import { compile, validateSet } from '../src/pipeline.js';
import { DEFAULT_MESH_CONFIG } from '../src/model/mesh-hosts.js';
import { buildWorkloadIndex } from '../src/xds/sidecar/workloads.js';
import { sidecarResources, type SidecarNode } from '../src/xds/sidecar/plan.js';
import type { ResourceSet } from '../src/xds/types.js';
import type { ProtoObject } from '../proto/loader.js';
import { envInt } from './gen.js';

const N = envInt('OXDS_BENCH_N', 1000);
const NAMESPACES = 10;
const TD = 'cluster.local';

function objects(egress: string | undefined): StoredObject[] {
  const out: KubeObject[] = [];
  for (let i = 0; i < N; i++) {
    const ns = `ns-${i % NAMESPACES}`;
    const app = `svc-${i}`;
    out.push(
      {
        apiVersion: 'v1',
        kind: 'Pod',
        metadata: {
          name: `${app}-pod`,
          namespace: ns,
          labels: { app, 'otoroshi.io/sidecar': 'inject' },
          ...(i === 0 && egress !== undefined ? { annotations: { 'otoroshi.io/sidecar-egress': egress } } : {}),
        },
        spec: { serviceAccountName: app },
        status: { podIP: `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}` },
      },
      {
        apiVersion: 'v1',
        kind: 'Service',
        metadata: { name: app, namespace: ns },
        spec: { selector: { app }, clusterIP: `10.96.${(i >> 8) & 255}.${i & 255}`, ports: [{ port: 80 }] },
      },
      {
        apiVersion: 'proxy.otoroshi.io/v1alpha1',
        kind: 'ServiceDescriptor',
        metadata: { name: app, namespace: ns },
        spec: { hosts: [`${app}.bench.local`], forceHttps: false, targets: { serviceName: app, servicePort: 80 } },
      },
    );
  }
  return out.map((object, seq) => ({
    key: `${object.kind}/${object.metadata.namespace}/${object.metadata.name}`,
    object,
    origin: { seq },
  }));
}

const count = (s: ResourceSet): number => Object.values(s).reduce((n: number, l: unknown[]) => n + l.length, 0);

function encodedBytes(s: ResourceSet): number {
  const errors: unknown[] = [];
  const c = validateSet('envoy', s, errors as never[]);
  if (errors.length > 0) throw new Error(`invalid resources: ${JSON.stringify(errors[0])}`);
  let n = 0;
  for (const list of Object.values(c.set) as ProtoObject[][]) for (const o of list) n += c.bytes.get(o)?.length ?? 0;
  return n;
}

const node: SidecarNode = {
  spiffeId: `spiffe://${TD}/ns/ns-0/sa/svc-0`,
  namespace: 'ns-0',
  serviceAccount: 'svc-0',
  appPort: 8080,
  inboundAddress: '0.0.0.0',
  inboundPort: 15006,
  outboundPort: 15001,
  proxyPort: 15080,
};

const rows: string[] = [];
let gatewayBytes = 0;
for (const [label, egress] of [
  ['unscoped (every descriptor)', undefined],
  ['scoped: own namespace (`./*`)', './*'],
  ['scoped: one descriptor (`ns-1/svc-1`)', 'ns-1/svc-1'],
] as const) {
  const objs = objects(egress);
  const c = compile({ objects: objs, loadErrors: [] }, { now: Date.now() }, {});
  const bundle = { name: 'otoroshi-ca-bundle', validationContext: { trustedCa: { inlineString: 'pem' } } };
  const gateway = { ...c.envoy.set, secrets: [...c.envoy.set.secrets, bundle] };
  if (gatewayBytes === 0) gatewayBytes = encodedBytes(c.envoy.set);
  const t0 = performance.now();
  const index = buildWorkloadIndex(objs, c.model.descriptors, TD);
  const t1 = performance.now();
  const set = sidecarResources(node, {
    model: c.model,
    objects: objs,
    index,
    mesh: DEFAULT_MESH_CONFIG,
    gateway,
    workloadSecret: (name) => ({ name, tlsCertificate: { certificateChain: { inlineString: 'pem' } } }),
  });
  const t2 = performance.now();
  if (!set) throw new Error('no sidecar resources');
  rows.push(
    [
      '',
      N.toLocaleString('en'),
      label,
      set.clusters.length,
      count(set),
      `**${(encodedBytes(set) / 1024).toFixed(1)} KiB**`,
      (t1 - t0).toFixed(0),
      (t2 - t1).toFixed(0),
      '',
    ]
      .join(' | ')
      .trim(),
  );
}
process.stdout.write(
  [
    '| descriptors | sidecar config | clusters | resources | encoded bytes | ' +
      'workload index ms (per build) | plan ms (per sidecar) |',
    '| --- | --- | --- | --- | --- | --- | --- |',
    ...rows,
    `| ${N.toLocaleString('en')} | for comparison: the gateway's config, same model | | | ` +
      `${(gatewayBytes / 1024).toFixed(1)} KiB | | |`,
    '',
  ].join('\n'),
);
