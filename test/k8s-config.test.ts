// Kubernetes flags: every one has an OXDS_* twin; bad values are reported.
import { test } from 'vitest';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { modelSettingsFrom, resolveConfig, splitList, OPTIONS } from '../src/config.js';
import { loadTemplates } from '../src/k8s/templates.js';

test('k8s config: defaults, env twins, validation', () => {
  const d = resolveConfig({}, {});
  assert.ok(d.ok);
  assert.equal(d.value.source, 'file');
  assert.equal(d.value.namespaces, '*');
  assert.equal(d.value.leaseName, 'otoroshi-xds-leader');
  assert.equal(d.value.leaseDurationSeconds, 15);
  assert.deepEqual(modelSettingsFrom(d.value), {
    ingressClasses: ['otoroshi'],
    defaultGroup: 'default',
    meshDomain: 'otoroshi.mesh',
    clusterDomain: 'cluster.local',
    enableMeshHosts: false, // file mode: mesh hosts only with --mesh-hosts on
    meshCertificate: false,
  });
  const e = resolveConfig(
    {},
    {
      OXDS_SOURCE: 'kubernetes',
      OXDS_NAMESPACES: 'a, b',
      OXDS_LABEL_SELECTOR: 'x=y',
      OXDS_INGRESS_CLASSES: 'otoroshi,oto-*',
      OXDS_POD_NAME: 'p-1',
      OXDS_RESTART_DEPENDANT_DEPLOYMENTS: 'on',
    },
  );
  assert.ok(e.ok);
  assert.equal(e.value.source, 'kubernetes');
  assert.deepEqual(splitList(e.value.namespaces), ['a', 'b']);
  assert.equal(e.value.labelSelector, 'x=y');
  assert.deepEqual(modelSettingsFrom(e.value).ingressClasses, ['otoroshi', 'oto-*']);
  assert.equal(modelSettingsFrom(e.value).enableMeshHosts, true); // Otoroshi's CRD mesh hosts in a cluster
  const m = resolveConfig(
    { source: 'kubernetes', meshHosts: 'off', meshDomain: 'mesh.corp', clusterDomain: 'k.io' },
    {},
  );
  assert.ok(m.ok);
  assert.deepEqual(
    [modelSettingsFrom(m.value).enableMeshHosts, modelSettingsFrom(m.value).meshDomain, m.value.clusterDomain],
    [false, 'mesh.corp', 'k.io'],
  );
  const badMesh = resolveConfig({ meshDomain: 'Otoroshi.Mesh/', meshHosts: 'yes' }, {});
  assert.ok(!badMesh.ok);
  assert.deepEqual(badMesh.errors.map((x) => x.split(':')[0]).sort(), ['--mesh-domain', '--mesh-hosts']);
  assert.equal(e.value.podName, 'p-1');
  // flags win over env
  const f = resolveConfig({ source: 'file' }, { OXDS_SOURCE: 'kubernetes' });
  assert.ok(f.ok && f.value.source === 'file');
  const bad = resolveConfig({ source: 'etcd', restartDependantDeployments: 'yes', namespaces: ' , ' }, {});
  assert.ok(!bad.ok);
  assert.equal(bad.errors.length, 3);
  assert.match(bad.errors.join('\n'), /--source: expected file\|kubernetes/);
  for (const flag of [
    'source',
    'kubeconfig',
    'namespaces',
    'label-selector',
    'ingress-classes',
    'default-group',
    'lease-name',
    'lease-namespace',
    'lease-duration-seconds',
    'pod-name',
    'ingress-address',
    'restart-dependant-deployments',
    'templates',
  ]) {
    const o = OPTIONS.find((x) => x.flag === flag);
    assert.ok(o && o.env === `OXDS_${flag.toUpperCase().replace(/-/g, '_')}`, flag);
  }
});

test('k8s config: a templates file is checked when loaded', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'oxds-tpl-'));
  const good = path.join(dir, 'good.yaml');
  fs.writeFileSync(good, 'service-descriptor:\n  forceHttps: false\napikeys:\n  dailyQuota: 5\n');
  assert.deepEqual(loadTemplates(good), { 'service-descriptor': { forceHttps: false }, apikeys: { dailyQuota: 5 } });
  const typo = path.join(dir, 'typo.yaml');
  fs.writeFileSync(typo, 'service-descriptr: {}\n');
  assert.throws(() => loadTemplates(typo), /unknown template keys service-descriptr/);
  const list = path.join(dir, 'list.yaml');
  fs.writeFileSync(list, '- a\n');
  assert.throws(() => loadTemplates(list), /expected an object/);
});
