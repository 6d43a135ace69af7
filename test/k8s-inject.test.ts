// Sidecar injection, unit level: AdmissionReview fixtures shaped like the Kubernetes API docs'
// example (test/fixtures/admission/), the JSON patch applied to the Pod, and the iptables rules.
// The real API server applying the same patch is test/kube-real-inject.test.ts.
import { test } from 'vitest';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import {
  reviewInjection,
  injectSidecar,
  INJECT_DEFAULTS,
  type InjectOptions,
  type JsonPatchOp,
} from '../src/k8s/inject.js';
import { interceptionRules, SIDECAR_UID } from '../src/k8s/inject-iptables.js';

const OPTS: InjectOptions = {
  envoyImage: 'envoyproxy/envoy:v1.31-latest',
  initImage: 'otoroshi-xds:0.1.0',
  xdsAddress: 'otoroshi-xds-xds.otoroshi-xds.svc:18000',
  controlPlanePorts: [18000, 18001],
  tokenAudience: 'otoroshi-xds',
  ...INJECT_DEFAULTS,
};

const fixture = (): Record<string, any> =>
  JSON.parse(fs.readFileSync('test/fixtures/admission/pod-create.json', 'utf8')) as Record<string, any>;

/** RFC 6902 `add` (the only op the injector emits): `-` appends, a missing parent is an error. */
function applyAdds(doc: unknown, ops: readonly JsonPatchOp[]): any {
  const out = structuredClone(doc) as any;
  for (const op of ops) {
    assert.equal(op.op, 'add');
    const parts = op.path
      .split('/')
      .slice(1)
      .map((p) => p.replace(/~1/g, '/').replace(/~0/g, '~'));
    const last = parts.pop()!;
    let parent = out;
    for (const p of parts) {
      parent = parent[p];
      assert.ok(parent !== undefined && parent !== null, `${op.path}: no parent`);
    }
    if (Array.isArray(parent)) {
      if (last === '-') parent.push(op.value);
      else parent.splice(Number(last), 0, op.value);
    } else parent[last] = op.value;
  }
  return out;
}

function patched(review: Record<string, any>): { pod: any; response: any } {
  const r = reviewInjection(review, OPTS);
  assert.ok(r.ok, r.ok ? '' : r.error);
  const response = r.review.response;
  assert.equal(response.uid, review['request'].uid);
  assert.equal(response.allowed, true);
  assert.equal(response.patchType, 'JSONPatch');
  const ops = JSON.parse(Buffer.from(response.patch!, 'base64').toString('utf8')) as JsonPatchOp[];
  return { pod: applyAdds(review['request'].object, ops), response };
}

test(
  'inject: a labelled Pod gets the Envoy sidecar, the bootstrap and iptables init containers, and the token ' +
    'volume',
  () => {
    const { pod, response } = patched(fixture());
    assert.deepEqual(
      pod.spec.containers.map((c: any) => c.name),
      ['app', 'otoroshi-xds-envoy'],
    );
    assert.deepEqual(
      pod.spec.initContainers.map((c: any) => c.name),
      ['otoroshi-xds-bootstrap', 'otoroshi-xds-iptables'],
    );
    assert.deepEqual(
      pod.spec.volumes.map((v: any) => v.name),
      ['data', 'otoroshi-xds-token', 'otoroshi-xds-bootstrap'],
    );
    const boot = pod.spec.initContainers[0];
    const arg = (flag: string): string | undefined => boot.args[boot.args.indexOf(flag) + 1];
    assert.deepEqual(boot.args.slice(0, 2), ['bootstrap', 'sidecar']);
    assert.equal(arg('--namespace'), '$(POD_NAMESPACE)');
    assert.equal(arg('--service-account'), 'payments');
    assert.equal(arg('--app-port'), '8080');
    assert.equal(arg('--inbound-port'), '15006');
    assert.equal(arg('--outbound-port'), '15001');
    assert.equal(arg('--xds-address'), 'otoroshi-xds-xds.otoroshi-xds.svc:18000');
    assert.equal(arg('--inbound-address'), '0.0.0.0');
    assert.equal(arg('--node-id'), '$(POD_NAME).$(POD_NAMESPACE)');
    assert.deepEqual(boot.command.slice(0, 2), ['sh', '-c']);
    const token = pod.spec.volumes[1].projected.sources[0].serviceAccountToken;
    assert.deepEqual(token, { audience: 'otoroshi-xds', expirationSeconds: 86400, path: 'token' });
    const envoy = pod.spec.containers[1];
    assert.equal(envoy.securityContext.runAsUser, SIDECAR_UID);
    assert.deepEqual(envoy.args.slice(0, 2), ['-c', '/etc/otoroshi-xds/envoy.yaml']);
    const ipt = pod.spec.initContainers[1];
    assert.deepEqual(ipt.securityContext.capabilities.add, ['NET_ADMIN', 'NET_RAW']);
    assert.match(ipt.command[2], /--uid-owner 1337 -j RETURN/);
    assert.equal(pod.metadata.annotations['otoroshi.io/sidecar-injected'], 'true');
    // Otoroshi's annotations: each one mapped or reported, never silently dropped.
    assert.equal(response.warnings.length, 5);
    for (const k of ['sidecar-apikey', 'sidecar-backend-cert', 'sidecar-client-cert', 'expected-dn', 'token-secret'])
      assert.ok(
        response.warnings.some((w: string) => w.startsWith(`otoroshi.io/${k}: `)),
        k,
      );
    assert.ok(response.warnings.filter((w: string) => /not supported/.test(w)).length === 4);
  },
);

test('inject: a Pod without initContainers, volumes or annotations gets them created', () => {
  const f = fixture();
  const obj = f['request'].object;
  delete obj.metadata.annotations;
  delete obj.spec.volumes;
  delete obj.spec.serviceAccountName;
  obj.spec.containers[0].ports = [];
  const { pod, response } = patched(f);
  assert.equal(pod.spec.initContainers.length, 2);
  assert.equal(pod.spec.volumes.length, 2);
  assert.deepEqual(pod.metadata.annotations, { 'otoroshi.io/sidecar-injected': 'true' });
  const boot = pod.spec.initContainers[0];
  assert.equal(boot.args[boot.args.indexOf('--service-account') + 1], 'default');
  assert.ok(!boot.args.includes('--app-port'));
  assert.deepEqual(response.warnings.length, 1);
  assert.match(response.warnings[0], /no containerPort/);
});

test('inject: unlabelled, already injected, non-Pod and non-CREATE reviews are allowed unchanged', () => {
  const cases: Array<(f: Record<string, any>) => void> = [
    (f) => delete f['request'].object.metadata.labels['otoroshi.io/sidecar'],
    (f) => (f['request'].object.metadata.labels['otoroshi.io/sidecar'] = 'disabled'),
    (f) => (f['request'].object.metadata.annotations['otoroshi.io/sidecar-injected'] = 'true'),
    (f) => f['request'].object.spec.containers.push({ name: 'otoroshi-xds-envoy', image: 'x' }),
    (f) => (f['request'].operation = 'UPDATE'),
    (f) => (f['request'].kind = { group: 'apps', version: 'v1', kind: 'Deployment' }),
  ];
  for (const change of cases) {
    const f = fixture();
    change(f);
    const r = reviewInjection(f, OPTS);
    assert.ok(r.ok);
    assert.deepEqual(r.review.response, { uid: '705ab4f5-6393-11e8-b7cc-42010a800002', allowed: true });
  }
});

test('inject: refusals name the field; malformed reviews are errors, never a throw', () => {
  const deny = (change: (f: Record<string, any>) => void): string => {
    const f = fixture();
    change(f);
    const r = reviewInjection(f, OPTS);
    assert.ok(r.ok);
    assert.equal(r.review.response.allowed, false);
    return r.review.response.status!.message;
  };
  assert.match(
    deny((f) => (f['request'].object.spec.hostNetwork = true)),
    /hostNetwork/,
  );
  assert.match(
    deny((f) => (f['request'].object.spec.containers[0].ports[0].containerPort = 15006)),
    /^spec\.containers\[0\]\.ports\[0\]\.containerPort: 15006 is the sidecar's inbound port/,
  );
  assert.match(
    deny((f) => (f['request'].object.metadata.annotations['otoroshi.io/sidecar-exclude-inbound-ports'] = '9090,x')),
    /otoroshi\.io\/sidecar-exclude-inbound-ports\]: not a port: "x"/,
  );
  for (const [body, field] of [
    [null, 'body'],
    [{ kind: 'Pod' }, 'kind'],
    [{ kind: 'AdmissionReview' }, 'request'],
    [{ kind: 'AdmissionReview', request: { uid: '' } }, 'request.uid'],
    [
      { kind: 'AdmissionReview', request: { uid: 'u', operation: 'CREATE', kind: { group: '', kind: 'Pod' } } },
      'request.object',
    ],
  ] as const) {
    const r = reviewInjection(body, OPTS);
    assert.ok(!r.ok);
    assert.ok(r.error.startsWith(`${field}:`), r.error);
  }
  // the pure function never throws on odd shapes
  assert.deepEqual(injectSidecar({ metadata: 'x', spec: 3 }, OPTS), {
    inject: false,
    reason: 'no label otoroshi.io/sidecar: inject',
  });
});

test(
  'iptables: inbound and outbound TCP redirected; Envoy uid, loopback, DNS, control plane and excluded ports are ' +
    'not',
  () => {
    const rules = interceptionRules({
      inboundPort: 15006,
      outboundPort: 15001,
      uid: 1337,
      excludeOutboundPorts: [18001, 18000],
      excludeInboundPorts: [9090],
    });
    const out = rules.filter((r) => r.includes('-A OXDS_OUTPUT'));
    const inb = rules.filter((r) => r.includes('-A OXDS_INBOUND'));
    assert.deepEqual(
      out.map((r) => r.replace('iptables -w -t nat -A OXDS_OUTPUT ', '')),
      [
        '-m owner --uid-owner 1337 -j RETURN',
        '-d 127.0.0.0/8 -j RETURN',
        '-p tcp --dport 53 -j RETURN',
        '-p tcp --dport 18000 -j RETURN',
        '-p tcp --dport 18001 -j RETURN',
        '-p tcp -j REDIRECT --to-ports 15001',
      ],
    );
    assert.deepEqual(
      inb.map((r) => r.replace('iptables -w -t nat -A OXDS_INBOUND ', '')),
      [
        '-p tcp --dport 9090 -j RETURN',
        '-p tcp --dport 15001 -j RETURN',
        '-p tcp --dport 15006 -j RETURN',
        '-p tcp -j REDIRECT --to-ports 15006',
      ],
    );
    assert.ok(rules.some((r) => r.includes('-A PREROUTING -p tcp -j OXDS_INBOUND')));
    assert.ok(rules.some((r) => r.includes('-A OUTPUT -p tcp -j OXDS_OUTPUT')));
  },
);

test(
  'inject: the bootstrap init command passes the flags as they are and the token file as --xds-token, output to the ' +
    'shared file',
  () => {
    const { pod } = patched(fixture());
    const boot = pod.spec.initContainers[0];
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'oxds-inject-sh-'));
    // a stand-in otoroshi-xds that prints its argv, one per line; paths of the pod mapped into dir
    fs.writeFileSync(path.join(dir, 'otoroshi-xds'), '#!/bin/sh\nfor a in "$@"; do printf "%s\\n" "$a"; done\n', {
      mode: 0o755,
    });
    fs.mkdirSync(path.join(dir, 'token'));
    fs.writeFileSync(path.join(dir, 'token', 'token'), 'eyJ.a b$c.sig');
    fs.mkdirSync(path.join(dir, 'out'));
    const script = (boot.command[2] as string)
      .replace('/var/run/secrets/otoroshi-xds', path.join(dir, 'token'))
      .replace('/etc/otoroshi-xds', path.join(dir, 'out'));
    const r = spawnSync('sh', ['-c', script, boot.command[3], ...boot.args], {
      env: { PATH: `${dir}:/usr/bin:/bin` },
      encoding: 'utf8',
    });
    assert.equal(r.status, 0, r.stderr);
    const argv = fs
      .readFileSync(path.join(dir, 'out', 'envoy.yaml'), 'utf8')
      .trimEnd()
      .split('\n');
    assert.deepEqual(argv, [...boot.args, '--xds-token', 'eyJ.a b$c.sig']);
  },
);
