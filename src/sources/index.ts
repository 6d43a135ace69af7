// The config source of a server: a YAML directory (file mode) or the Kubernetes API.
import type { EventEmitter } from 'node:events';
import os from 'node:os';
import type { Logger } from 'pino';
import { splitList, type Config } from '../config.js';
import type { ConfigView, StoredObject } from '../model/types.js';
import { FileSource } from './file-source.js';
import { KubeClient, loadKubeConfig } from '../k8s/client.js';
import { KubeSource } from '../k8s/source.js';
import { KubeController } from '../k8s/controller.js';
import { loadTemplates } from '../k8s/templates.js';

/** What startServer needs from a source: FileSource and KubeSource both have it. Emits 'change'. */
export interface ConfigSource extends EventEmitter {
  start(): Promise<void>;
  stop(): void;
  /** Re-reads now when the source polls (file); a no-op for push sources. Resolves to "changed". */
  scan(): Promise<boolean>;
  view(): ConfigView;
  /** False while the source has not read everything once: nothing is published before (no empty config to proxies). */
  synced?(): boolean;
}

export interface CreatedSource {
  source: ConfigSource;
  /** Kubernetes mode: leader election, statuses and exported secrets. */
  controller?: KubeController;
}

/**
 * The source of the config. `prepare` (file mode) runs on each file's objects as they are read, ahead
 * of the build (FileSourceOptions.prepare).
 */
export function createSource(
  config: Config,
  logger: Logger,
  prepare?: (objects: readonly StoredObject[]) => Promise<void>,
): CreatedSource {
  if (config.source !== 'kubernetes')
    return {
      source: new FileSource({
        dir: config.configDir,
        limits: { maxFileBytes: config.maxConfigFileBytes, maxTotalBytes: config.maxConfigTotalBytes },
        prepare,
      }),
    };
  const kc = loadKubeConfig(config.kubeconfig);
  const client = new KubeClient(kc);
  const log = logger.child({ c: 'k8s' });
  const onLog = (level: 'info' | 'warn', msg: string, fields?: Record<string, unknown>): void =>
    log[level](fields ?? {}, msg);
  const namespaces = splitList(config.namespaces);
  const source = new KubeSource({
    kubeConfig: kc,
    namespaces,
    ...(config.labelSelector ? { labelSelector: config.labelSelector } : {}),
    ...(config.templates ? { templates: loadTemplates(config.templates) } : {}),
    onLog,
  });
  const controller = new KubeController(client, {
    namespaces,
    leaseName: config.leaseName,
    leaseNamespace: config.leaseNamespace ?? client.currentNamespace(),
    identity: config.podName ?? os.hostname(),
    leaseDurationSeconds: Math.max(1, config.leaseDurationSeconds),
    retryPeriodMs: Math.max(200, Math.round((config.leaseDurationSeconds * 1000) / 5)),
    restartDependantDeployments: config.restartDependantDeployments === 'on',
    ...(config.ingressAddress ? { ingressAddress: config.ingressAddress } : {}),
    onLog,
  });
  return { source, controller };
}
