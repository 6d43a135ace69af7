// A workload certificate rotation wave over many sidecar streams of one egress scope: every stream
// gets its own new certificate (new key, its SPIFFE id as URI SAN) and nothing of another workload,
// while the scope's clusters are encoded once and shared by every stream.
import { test } from 'vitest';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { X509Certificate } from 'node:crypto';
import { resolveConfig } from '../src/config.js';
import { startServer, makeLogger } from '../src/main.js';
import { splitPemChain } from '../src/ca/export.js';
import { SIDECAR_CERT_SECRET } from '../src/xds/names.js';
import { AdsClient, TYPE_URLS, decodeAny } from './helpers/ads-client.js';
import type { ProtoObject } from '../proto/loader.js';
import type { DeltaDiscoveryResponse, DiscoveryResponse } from '../src/xds/server/messages.js';

const T0 = Date.UTC(2026, 10, 22, 12, 0, 0);
const BUNDLE = 'otoroshi-ca-bundle';
const WORKLOADS = 8;
/** Every other workload's stream speaks SotW (the others Delta, like Envoy's `bootstrap sidecar` default). */
const isSotw = (i: number): boolean => i % 4 === 3;

function workload(i: number): string {
  const ns = `ns-${i % 2}`;
  const app = `svc-${i}`;
  return `apiVersion: v1
kind: Pod
metadata: {name: ${app}-pod, namespace: ${ns}, labels: {app: ${app}, otoroshi.io/sidecar: inject}}
spec: {serviceAccountName: ${app}}
status: {podIP: 10.0.0.${i + 1}}
---
apiVersion: v1
kind: Service
metadata: {name: ${app}, namespace: ${ns}}
spec: {selector: {app: ${app}}, clusterIP: 10.96.0.${i + 1}, ports: [{port: 80}]}
---
apiVersion: proxy.otoroshi.io/v1alpha1
kind: ServiceDescriptor
metadata: {name: ${app}, namespace: ${ns}}
spec: {hosts: [${app}.mesh.test], forceHttps: false, targets: {serviceName: ${app}, servicePort: 80}}
`;
}

const spiffeOf = (i: number): string => `spiffe://cluster.local/ns/ns-${i % 2}/sa/svc-${i}`;

interface Cert {
  name: string;
  key: string;
  uriSan: string;
  serial: string;
}

function certsOf(r: DiscoveryResponse | DeltaDiscoveryResponse): Cert[] {
  const res = r.resources as unknown as Array<{
    type_url: string;
    value: Uint8Array;
    resource?: { type_url: string; value: Uint8Array };
  }>;
  return res.flatMap((x) => {
    const s = decodeAny((x.resource ?? x) as never) as ProtoObject & {
      tlsCertificate?: { certificateChain: { inlineString: string }; privateKey: { inlineString: string } };
    };
    if (s.tlsCertificate === undefined) return [];
    const leaf = new X509Certificate(splitPemChain(s.tlsCertificate.certificateChain.inlineString)[0] as string);
    return [
      {
        name: String(s['name']),
        key: s.tlsCertificate.privateKey.inlineString,
        uriSan: leaf.subjectAltName ?? '',
        serial: leaf.serialNumber,
      },
    ];
  });
}

/** One sidecar stream: subscribes like Envoy, plus (refused) another workload's certificate. */
class Sidecar {
  readonly c: AdsClient;
  readonly names: string[];
  constructor(
    port: number,
    readonly i: number,
  ) {
    this.c = new AdsClient(port, {
      mode: isSotw(i) ? 'sotw' : 'delta',
      node: {
        id: `sidecar-${i}`,
        metadata: { OXDS_ROLE: 'sidecar', NAMESPACE: `ns-${i % 2}`, SERVICE_ACCOUNT: `svc-${i}` },
      },
    });
    // The next workload's certificate: never this node's to receive.
    this.names = [spiffeOf(i), SIDECAR_CERT_SECRET, BUNDLE, spiffeOf((i + 1) % WORKLOADS)];
    if (isSotw(i)) {
      this.c.request(TYPE_URLS.cluster, []);
      this.c.request(TYPE_URLS.secret, this.names);
    } else {
      this.c.subscribe(TYPE_URLS.cluster, ['*']);
      this.c.subscribe(TYPE_URLS.secret, this.names);
    }
  }

  /** The next response (ACKed), its type and the certificates it carries. */
  async next(): Promise<{ typeUrl: string; certs: Cert[] }> {
    if (isSotw(this.i)) {
      const r = await this.c.nextSotw(10_000);
      this.c.ack(r, r.typeUrl === TYPE_URLS.secret ? this.names : []);
      return { typeUrl: r.typeUrl, certs: certsOf(r) };
    }
    const r = await this.c.nextDelta(10_000);
    this.c.ackDelta(r);
    return { typeUrl: r.typeUrl, certs: certsOf(r) };
  }

  /** Responses until CDS and SDS were both received; the certificates of the SDS one. */
  async sync(): Promise<Cert[]> {
    const seen = new Map<string, Cert[]>();
    while (seen.size < 2) {
      const r = await this.next();
      seen.set(r.typeUrl, r.certs);
    }
    return seen.get(TYPE_URLS.secret) ?? [];
  }
}

function assertOwn(i: number, certs: readonly Cert[]): void {
  assert.deepEqual(
    certs.map((x) => x.name).sort(),
    [SIDECAR_CERT_SECRET, spiffeOf(i)].sort(),
    `workload ${i} holds its own certificate only`,
  );
  for (const x of certs) assert.equal(x.uriSan, `URI:${spiffeOf(i)}`, `workload ${i}: ${x.name} names it`);
  assert.equal(new Set(certs.map((x) => x.key)).size, 1, `workload ${i}: one key pair under both names`);
}

test(
  'rotation wave over sidecar streams of one scope: each gets its own new certificate and no other ' +
    "workload's; the scope's clusters are encoded once for all",
  async (t) => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'oxds-sidecar-rotation-'));
    t.onTestFinished(() => fs.rmSync(dir, { recursive: true, force: true }));
    fs.mkdirSync(path.join(dir, 'conf'));
    const docs = Array.from({ length: WORKLOADS }, (_, i) => workload(i));
    fs.writeFileSync(path.join(dir, 'conf', 'mesh.yaml'), docs.join('---\n'));
    // Sidecars name their identity in node metadata (the insecure local mode), every port ephemeral.
    const ports = { xdsPort: 0, adminPort: 0, authzPort: 0 };
    const flags = { config: path.join(dir, 'conf'), dataDir: path.join(dir, '.data'), ...ports };
    const r = resolveConfig({ ...flags, xdsNodeAuth: 'insecure-node-metadata' }, {});
    assert.ok(r.ok);
    const clock = { t: T0 };
    const server = await startServer(r.value, makeLogger('silent'), undefined, { now: () => clock.t });
    t.onTestFinished(() => server.stop());
    const sidecars = Array.from({ length: WORKLOADS }, (_, i) => new Sidecar(server.xdsPort, i));
    t.onTestFinished(() => sidecars.forEach((s) => s.c.close()));

    const before = await Promise.all(sidecars.map((s) => s.sync()));
    before.forEach((certs, i) => assertOwn(i, certs));
    // Sidecars of one scope hold the same cluster map: its encoded run is built once, then reused.
    const sharing = server.ads.sharedEncodingStats();
    assert.ok(sharing.hits >= WORKLOADS - 3, `shared cluster runs reused (${JSON.stringify(sharing)})`);

    // 24 h certificates, due at 16 h ± 2.4 h: every workload renews in this one rebuild.
    clock.t = T0 + 20 * 3_600_000;
    await server.rebuildNow();
    const after = await Promise.all(sidecars.map((s) => s.next()));
    after.forEach((res, i) => {
      assert.equal(res.typeUrl, TYPE_URLS.secret, `workload ${i}: only its secrets change`);
      const own = res.certs.filter((x) => x.name !== BUNDLE);
      assertOwn(i, own);
      for (const x of own) {
        assert.notEqual(x.key, before[i]?.[0]?.key, `workload ${i}: a new key pair`);
        assert.ok(!before[i]?.some((b) => b.serial === x.serial), `workload ${i}: a new certificate`);
      }
    });
    const keys = after.map((res) => res.certs[0]?.key);
    assert.equal(new Set(keys).size, WORKLOADS, 'every workload has a key pair of its own');
    await Promise.all(sidecars.map((s) => s.c.expectNone(300)));
  },
);
