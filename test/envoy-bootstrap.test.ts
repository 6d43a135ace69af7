// manifests/envoy/{gateway,sidecar}.yaml are real Envoy bootstraps: they parse as
// envoy.config.bootstrap.v3.Bootstrap (proto3 JSON, through our proto loader) and pass Envoy's
// PGV rules; they talk ADS over Delta gRPC to the cluster that reaches our xDS port.
import { test } from 'vitest';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import YAML from 'yaml';
import { fromProto3Json } from '../proto/json.js';
import { validateResource } from '../src/xds/validate.js';
import type { ProtoObject } from '../proto/loader.js';
import { OPTIONS } from '../src/config.js';
import { envoyTest } from './helpers/envoy.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const BOOTSTRAP = 'envoy.config.bootstrap.v3.Bootstrap';
/** Struct-valued fields: their keys are data, not field names. */
const STRUCTS = new Set(['metadata', 'static_layer']);

/** Envoy YAML uses proto field names (snake_case); our proto3 JSON parser takes JSON names. */
function jsonNames(v: unknown, inStruct = false): unknown {
  if (Array.isArray(v)) return v.map((x) => jsonNames(x, inStruct));
  if (v === null || typeof v !== 'object') return v;
  const out: Record<string, unknown> = {};
  for (const [k, x] of Object.entries(v as Record<string, unknown>)) {
    const name = inStruct || k === '@type' ? k : k.replace(/_([a-z0-9])/g, (_m, c: string) => c.toUpperCase());
    out[name] = inStruct ? x : jsonNames(x, STRUCTS.has(k));
  }
  return out;
}

function load(file: string): { raw: Record<string, unknown>; obj: ProtoObject } {
  const raw = YAML.parse(fs.readFileSync(path.join(ROOT, 'manifests', 'envoy', file), 'utf8')) as Record<
    string,
    unknown
  >;
  return { raw, obj: fromProto3Json(BOOTSTRAP, jsonNames(raw)) };
}

const XDS_PORT = OPTIONS.find((o) => o.key === 'xdsPort')?.default;

for (const file of ['gateway.yaml', 'sidecar.yaml']) {
  test(`manifests/envoy/${file}: a valid Envoy Bootstrap (proto + PGV rules)`, () => {
    const { obj } = load(file);
    const r = validateResource(BOOTSTRAP, obj);
    assert.ok(r.ok, r.ok ? '' : JSON.stringify(r.issues, null, 1));
  });

  test(`manifests/envoy/${file}: ADS over Delta gRPC to the xds cluster on --xds-port, LDS/CDS over ADS`, () => {
    const { obj } = load(file);
    const dyn = obj.dynamicResources as ProtoObject;
    const ads = dyn.adsConfig as ProtoObject;
    assert.equal(ads.apiType, 'DELTA_GRPC');
    assert.equal(ads.transportApiVersion, 'V3');
    const cluster = (((ads.grpcServices as ProtoObject[])[0] as ProtoObject).envoyGrpc as ProtoObject).clusterName;
    assert.deepEqual(dyn.ldsConfig, { ads: {}, resourceApiVersion: 'V3' });
    assert.deepEqual(dyn.cdsConfig, { ads: {}, resourceApiVersion: 'V3' });
    const clusters = (obj.staticResources as ProtoObject).clusters as ProtoObject[];
    const xds = clusters.find((c) => c.name === cluster);
    assert.ok(xds, `static cluster ${String(cluster)}`);
    // HTTP/2 (gRPC) to the control plane, on the default --xds-port.
    assert.ok(JSON.stringify(xds.typedExtensionProtocolOptions).includes('http2ProtocolOptions'));
    const ep = (((xds.loadAssignment as ProtoObject).endpoints as ProtoObject[])[0]?.lbEndpoints as ProtoObject[])[0]
      ?.endpoint as ProtoObject;
    assert.equal(((ep.address as ProtoObject).socketAddress as ProtoObject).portValue, XDS_PORT);
    // Never a static cluster named like one we send over CDS (Envoy would refuse the update).
    assert.ok(!clusters.some((c) => String(c.name).startsWith('oxds')));
    // The node says it is an Envoy (detectNodeType); a sidecar also says its role and ports.
    const fields = ((obj.node as ProtoObject).metadata as ProtoObject).fields as Record<string, unknown>;
    assert.deepEqual(fields.OXDS_NODE_TYPE, { stringValue: 'envoy' });
    if (file === 'gateway.yaml') assert.deepEqual(Object.keys(fields), ['OXDS_NODE_TYPE']);
    else assert.deepEqual(fields.OXDS_ROLE, { stringValue: 'sidecar' });
  });
}

test('bootstrap check can fail: a bootstrap breaking a PGV rule is rejected', () => {
  const { raw } = load('gateway.yaml');
  const bad = structuredClone(raw) as { static_resources: { clusters: { connect_timeout: string }[] } };
  const c0 = bad.static_resources.clusters[0];
  assert.ok(c0);
  c0.connect_timeout = '-1s';
  const r = validateResource(BOOTSTRAP, fromProto3Json(BOOTSTRAP, jsonNames(bad)));
  assert.equal(r.ok, false);
});

test('manifests/envoy/gateway.yaml is exactly what `otoroshi-xds bootstrap gateway` prints (no drift)', () => {
  const cli = path.join(ROOT, 'dist', 'src', 'cli.js');
  const printed = execFileSync(
    process.execPath,
    [cli, 'bootstrap', 'gateway', '--xds-address', 'otoroshi-xds.otoroshi.svc.cluster.local:18000'],
    { encoding: 'utf8' },
  );
  assert.equal(
    fs.readFileSync(path.join(ROOT, 'manifests', 'envoy', 'gateway.yaml'), 'utf8'),
    printed,
    'regenerate the manifest with the command above',
  );
});

const SIDECAR_ARGS = [
  'bootstrap',
  'sidecar',
  '--xds-address',
  'otoroshi-xds.otoroshi.svc.cluster.local:18000',
  '--namespace',
  'default',
  '--service-account',
  'default',
  '--xds-tls-ca',
  '/var/run/otoroshi-xds/ca.crt',
  '--xds-tls-cert',
  '/var/run/otoroshi-xds/tls.crt',
  '--xds-tls-key',
  '/var/run/otoroshi-xds/tls.key',
];

test('manifests/envoy/sidecar.yaml is exactly what `otoroshi-xds bootstrap sidecar` prints (no drift)', () => {
  const printed = execFileSync(process.execPath, [path.join(ROOT, 'dist', 'src', 'cli.js'), ...SIDECAR_ARGS], {
    encoding: 'utf8',
  });
  assert.equal(
    fs.readFileSync(path.join(ROOT, 'manifests', 'envoy', 'sidecar.yaml'), 'utf8'),
    printed,
    `regenerate the manifest with: otoroshi-xds ${SIDECAR_ARGS.join(' ')}`,
  );
});

test('bootstrap sidecar: ports and the xDS client certificate go where the flags say; bad ports are refused', () => {
  const cli = path.join(ROOT, 'dist', 'src', 'cli.js');
  const out = execFileSync(
    process.execPath,
    [cli, ...SIDECAR_ARGS, '--app-port', '9000', '--inbound-port', '16006', '--proxy-port', '0'],
    { encoding: 'utf8' },
  );
  const b = YAML.parse(out) as {
    node: { id: string; metadata: Record<string, string> };
    static_resources: { clusters: { transport_socket?: unknown }[] };
  };
  assert.equal(b.node.id, 'sidecar~default~default');
  assert.equal(b.node.metadata.OXDS_SIDECAR_APP_PORT, '9000');
  assert.equal(b.node.metadata.OXDS_SIDECAR_INBOUND_PORT, '16006');
  assert.equal(b.node.metadata.OXDS_SIDECAR_PROXY_PORT, '0');
  assert.match(JSON.stringify(b.static_resources.clusters[0]?.transport_socket), /\/var\/run\/otoroshi-xds\/tls\.crt/);
  const bad = spawnSync(process.execPath, [cli, ...SIDECAR_ARGS, '--inbound-port', '70000'], { encoding: 'utf8' });
  assert.notEqual(bad.status, 0);
  assert.match(bad.stderr, /--inbound-port/);
  const noNs = spawnSync(
    process.execPath,
    [cli, 'bootstrap', 'sidecar', '--xds-address', 'a:1', '--service-account', 'x'],
    {
      encoding: 'utf8',
    },
  );
  assert.notEqual(noNs.status, 0);
  assert.match(noNs.stderr, /--namespace/);
});

/** The manifest, with its certificate paths pointing at real files (Envoy's validate mode opens them). */
function validatable(file: string): string {
  const src = path.join(ROOT, 'manifests', 'envoy', file);
  if (file !== 'sidecar.yaml') return src;
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'oxds-sidecar-validate-'));
  execFileSync(
    'openssl',
    [
      'req',
      '-x509',
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:P-256',
      '-nodes',
      '-days',
      '1',
      '-subj',
      '/CN=x',
      '-keyout',
      path.join(dir, 'tls.key'),
      '-out',
      path.join(dir, 'tls.crt'),
    ],
    { stdio: 'ignore' },
  );
  fs.copyFileSync(path.join(dir, 'tls.crt'), path.join(dir, 'ca.crt'));
  const out = path.join(dir, file);
  fs.writeFileSync(out, fs.readFileSync(src, 'utf8').replaceAll('/var/run/otoroshi-xds/', `${dir}/`));
  return out;
}

for (const file of ['gateway.yaml', 'sidecar.yaml']) {
  envoyTest(
    `manifests/envoy/${file}: the real Envoy accepts it (--mode validate), without deprecated fields`,
    async (_t, bin) => {
      const r = spawnSync(bin, ['--mode', 'validate', '-c', validatable(file), '-l', 'warning'], {
        encoding: 'utf8',
        timeout: 60_000,
      });
      assert.equal(r.status, 0, `${r.stdout}\n${r.stderr}`);
      assert.match(r.stdout + r.stderr, /OK/);
      assert.doesNotMatch(r.stdout + r.stderr, /[Dd]eprecated/);
    },
  );
}
