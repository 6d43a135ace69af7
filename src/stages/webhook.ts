// The admission webhooks of a cluster-mode server (validation, same as the controller's; sidecar injection)
// and the CoreDNS mesh block, both kept by the leader.
import type { Logger } from 'pino';
import { modelSettingsFrom, splitList, type Config } from '../config.js';
import type { CertificateAuthority } from '../ca/index.js';
import { KubeClient, loadKubeConfig } from '../k8s/client.js';
import type { KubeController } from '../k8s/controller.js';
import { AdmissionWebhook } from '../k8s/webhook.js';
import { injectOptionsFrom } from '../k8s/inject-config.js';
import { corednsSyncFrom, type CorednsSync } from '../k8s/coredns.js';
import type { ConfigSource } from '../sources/index.js';

export function startWebhook(
  config: Config,
  kube: KubeController,
  source: ConfigSource,
  ca: () => CertificateAuthority | undefined,
  deps: { secretSeed: string; clock: () => number },
  logger: Logger,
): AdmissionWebhook {
  const log = logger.child({ c: 'webhook' });
  const ns = config.leaseNamespace ?? new KubeClient(loadKubeConfig(config.kubeconfig)).currentNamespace();
  const hosts = config.webhookHosts
    ? splitList(config.webhookHosts)
    : [`otoroshi-xds-webhook.${ns}.svc`, `otoroshi-xds-webhook.${ns}.svc.cluster.local`];
  const webhook = new AdmissionWebhook({
    host: config.host,
    port: config.webhookPort ?? 0,
    hosts,
    configName: config.webhookConfigName,
    inject: { options: injectOptionsFrom(config, ns), configName: config.injectWebhookConfigName },
    client: new KubeClient(loadKubeConfig(config.kubeconfig)),
    ca,
    isLeader: () => kube.isLeader(),
    view: () => source.view(),
    settings: () => ({ secretSeed: deps.secretSeed, ...modelSettingsFrom(config), now: deps.clock() }),
    now: deps.clock,
    onLog: (level, msg, fields) => log[level](fields ?? {}, msg),
  });
  kube.elector.on('leading', () => webhook.poke());
  webhook.start();
  return webhook;
}

/** The CoreDNS mesh block, kept by the leader (--coredns-integration on|dry-run; docs/mesh-control-plane.md). */
export function startCoredns(config: Config, kube: KubeController, logger: Logger): CorednsSync | undefined {
  const log = logger.child({ c: 'coredns' });
  const client = new KubeClient(loadKubeConfig(config.kubeconfig));
  const ns = config.leaseNamespace ?? client.currentNamespace();
  const sync = corednsSyncFrom(
    config,
    ns,
    client,
    () => kube.isLeader(),
    (level, msg, fields) => log[level](fields ?? {}, msg),
  );
  if (sync === undefined) return undefined;
  kube.elector.on('leading', () => void sync.step());
  sync.start();
  return sync;
}
