// Shared helpers of the test/k8s-*.test.ts files.
import * as k8s from '@kubernetes/client-node';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { FakeApiServer, type Obj } from './fake-apiserver.js';

export async function startFake(opts: { bookmarkMs?: number } = {}): Promise<FakeApiServer> {
  return new FakeApiServer(undefined, opts).start();
}

export function kubeConfigFor(api: FakeApiServer): k8s.KubeConfig {
  const kc = new k8s.KubeConfig();
  kc.loadFromOptions(api.kubeConfigOptions());
  return kc;
}

/** Writes a kubeconfig file for `--kubeconfig`. */
export function writeKubeConfig(api: FakeApiServer): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'oxds-kube-'));
  const file = path.join(dir, 'config');
  const text = [
    'apiVersion: v1',
    'kind: Config',
    'clusters:',
    `- name: fake`,
    `  cluster: { server: "${api.url}", insecure-skip-tls-verify: true }`,
    'users:',
    '- name: fake',
    '  user: { token: fake-token }',
    'contexts:',
    '- name: fake',
    '  context: { cluster: fake, user: fake, namespace: default }',
    'current-context: fake',
    '',
  ].join('\n');
  fs.writeFileSync(file, text);
  return file;
}

/** Polls `cond` until it holds (every 20 ms; fails after `ms`). Waits for effects, asserts nothing about speed. */
export async function eventually<T>(
  cond: () => T | undefined | false | Promise<T | undefined | false>,
  ms = 10_000,
  what = 'condition',
): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await cond();
    if (v !== undefined && v !== false) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** A ServiceDescriptor CR (the fixture module's builder). */
export { descriptorObject as descriptor } from '../fixtures/index.js';

export function service(name: string, port: number, ns = 'default'): Obj {
  return {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: { name, namespace: ns },
    spec: { ports: [{ name: 'http', port, targetPort: port, protocol: 'TCP' }] },
  };
}

export function endpointSlice(service: string, ips: string[], port: number, ns = 'default'): Obj {
  return {
    apiVersion: 'discovery.k8s.io/v1',
    kind: 'EndpointSlice',
    metadata: { name: `${service}-abc`, namespace: ns, labels: { 'kubernetes.io/service-name': service } },
    addressType: 'IPv4',
    endpoints: ips.map((ip) => ({ addresses: [ip], conditions: { ready: true } })),
    ports: [{ name: 'http', port, protocol: 'TCP' }],
  };
}
