// manifests/envoy/{gateway,sidecar}.yaml are real Envoy bootstraps: they parse as
// envoy.config.bootstrap.v3.Bootstrap (proto3 JSON, through our proto loader) and pass Envoy's
// PGV rules; they talk ADS over Delta gRPC to the cluster that reaches our xDS port.
import { test } from 'vitest';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import YAML from 'yaml';
import { fromProto3Json } from '../src/proto/json.js';
import { validateResource } from '../src/xds/validate.js';
import type { ProtoObject } from '../src/proto/loader.js';
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
    // The node says it is an Envoy (detectNodeType).
    assert.deepEqual(((obj.node as ProtoObject).metadata as ProtoObject).fields, {
      OXDS_NODE_TYPE: { stringValue: 'envoy' },
    });
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

for (const file of ['gateway.yaml', 'sidecar.yaml']) {
  envoyTest(
    `manifests/envoy/${file}: the real Envoy accepts it (--mode validate), without deprecated fields`,
    async (_t, bin) => {
      const r = spawnSync(
        bin,
        ['--mode', 'validate', '-c', path.join(ROOT, 'manifests', 'envoy', file), '-l', 'warning'],
        { encoding: 'utf8', timeout: 60_000 },
      );
      assert.equal(r.status, 0, `${r.stdout}\n${r.stderr}`);
      assert.match(r.stdout + r.stderr, /OK/);
      assert.doesNotMatch(r.stdout + r.stderr, /[Dd]eprecated/);
    },
  );
}
