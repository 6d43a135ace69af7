// The validating admission webhook of a cluster-mode server (same model validation as the controller).
import type { Logger } from 'pino';
import { modelSettingsFrom, splitList, type Config } from '../config.js';
import type { CertificateAuthority } from '../ca/index.js';
import { KubeClient, loadKubeConfig } from '../k8s/client.js';
import type { KubeController } from '../k8s/controller.js';
import { AdmissionWebhook } from '../k8s/webhook.js';
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
