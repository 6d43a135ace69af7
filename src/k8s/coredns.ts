// CoreDNS integration (optional, --coredns-integration on|dry-run): a marked server block in the
// Corefile (ConfigMap kube-system/coredns) answers every `*.<meshDomain>` name with the address of
// the mesh gateway Service, as Otoroshi's `coreDnsIntegration` does, so mesh hosts resolve in the
// cluster. The block carries Otoroshi's markers (`### otoroshi-mesh-begin ###`): a cluster moving
// from Otoroshi gets its block replaced, never a second server block for the same zone (CoreDNS
// refuses to start with one). Idempotent: a block already equal is left alone (its config-hash line).
// Differences from Otoroshi: no `upstream` line (removed in CoreDNS 1.7) and `answer auto` on the
// rewrite (CoreDNS >= 1.10), so answers carry the name the client asked for.
import { createHash } from 'node:crypto';
import type { KubeClient } from './client.js';
import type { Config } from '../config.js';

export interface CorednsBlockOptions {
  meshDomain: string;
  clusterDomain: string;
  /** Otoroshi's coreDnsEnv: the zone becomes `<env>.<meshDomain>` and the markers `otoroshi-<env>-mesh-…`. */
  env?: string;
  /** The name every mesh host is rewritten to (a Service of the cluster domain). */
  rewriteTarget: string;
  port?: number;
}

const markers = (env: string | undefined): { begin: string; end: string } => {
  const e = env !== undefined && env !== '' ? `${env}-` : '';
  return { begin: `### otoroshi-${e}mesh-begin ###`, end: `### otoroshi-${e}mesh-end ###` };
};

/** The marked server block (pure); its config-hash line identifies the options it was made from. */
export function corednsBlock(o: CorednsBlockOptions): string {
  const { begin, end } = markers(o.env);
  const zone = o.env !== undefined && o.env !== '' ? `${o.env}.${o.meshDomain}` : o.meshDomain;
  const body = [
    `${zone}:${o.port ?? 53} {`,
    '    errors',
    '    health',
    '    ready',
    `    kubernetes ${o.clusterDomain} in-addr.arpa ip6.arpa {`,
    '        pods insecure',
    '        fallthrough in-addr.arpa ip6.arpa',
    '    }',
    `    rewrite name regex (.*)\\.${zone.replace(/\./g, '\\.')} ${o.rewriteTarget} answer auto`,
    '    forward . /etc/resolv.conf',
    '    cache 30',
    '    loop',
    '    reload',
    '    loadbalance',
    '}',
  ].join('\n');
  const hash = createHash('sha256').update(body).digest('hex');
  return `${begin}\n### config-hash: ${hash}\n${body}\n${end}\n`;
}

/** The Corefile with `block` in place of the marked one, or put first; `changed` false when equal. */
export function patchCorefile(corefile: string, block: string, env?: string): { corefile: string; changed: boolean } {
  const { begin, end } = markers(env);
  const b = corefile.indexOf(begin);
  const e = b < 0 ? -1 : corefile.indexOf(end, b);
  if (b < 0 || e < 0) return { corefile: block + corefile, changed: true };
  let after = e + end.length;
  if (corefile[after] === '\n') after++;
  const next = corefile.slice(0, b) + block + corefile.slice(after);
  return { corefile: next, changed: next !== corefile };
}

interface ConfigMap {
  metadata: { name: string; namespace?: string; resourceVersion?: string };
  data?: Record<string, string>;
  [k: string]: unknown;
}

export type CorednsResult = 'updated' | 'unchanged' | 'missing' | 'dry-run';

/**
 * Puts the block into the Corefile of ConfigMap `namespace/name`. A PUT with the resourceVersion
 * read: a concurrent edit makes it fail (409) rather than be overwritten; the next run retries.
 */
export async function ensureCorednsBlock(
  client: Pick<KubeClient, 'find' | 'replace'>,
  configMap: { namespace: string; name: string },
  block: string,
  o: { dryRun: boolean; env?: string; onDryRun?: (block: string, corefile: string) => void },
): Promise<CorednsResult> {
  const ns = encodeURIComponent(configMap.namespace);
  const p = `/api/v1/namespaces/${ns}/configmaps/${encodeURIComponent(configMap.name)}`;
  const cm = await client.find<ConfigMap>(p);
  const corefile = cm?.data?.['Corefile'];
  if (cm === undefined || corefile === undefined) return 'missing';
  const next = patchCorefile(corefile, block, o.env);
  if (!next.changed) return 'unchanged';
  if (o.dryRun) {
    o.onDryRun?.(block, next.corefile);
    return 'dry-run';
  }
  await client.replace(p, { ...cm, data: { ...cm.data, Corefile: next.corefile } });
  return 'updated';
}

/** `ns/name` → parts (an error message for anything else). */
export function parseConfigMapRef(s: string): { namespace: string; name: string } | string {
  const m = /^([a-z0-9]([-a-z0-9]*[a-z0-9])?)\/([a-z0-9]([-.a-z0-9]*[a-z0-9])?)$/.exec(s);
  return m?.[1] && m[3] ? { namespace: m[1], name: m[3] } : `expected NAMESPACE/NAME, got ${JSON.stringify(s)}`;
}

/** The leader keeps the block in place: now, then every `everyMs` (a CoreDNS re-install drops it). */
export class CorednsSync {
  private timer: NodeJS.Timeout | undefined;
  private stopped = false;
  private last: CorednsResult | undefined;

  constructor(
    private readonly o: {
      client: Pick<KubeClient, 'find' | 'replace'>;
      configMap: { namespace: string; name: string };
      block: string;
      dryRun: boolean;
      env?: string;
      isLeader: () => boolean;
      onLog?: (level: 'info' | 'warn', msg: string, fields?: Record<string, unknown>) => void;
    },
    private readonly everyMs = 60_000,
  ) {}

  start(): void {
    const tick = (): void => {
      void this.step().finally(() => {
        if (this.stopped) return;
        this.timer = setTimeout(tick, this.everyMs);
        this.timer.unref();
      });
    };
    tick();
  }

  /** One pass (exported for tests and for the leader's first run). */
  async step(): Promise<CorednsResult | undefined> {
    if (!this.o.isLeader()) return undefined;
    const cm = `${this.o.configMap.namespace}/${this.o.configMap.name}`;
    try {
      const r = await ensureCorednsBlock(this.o.client, this.o.configMap, this.o.block, {
        dryRun: this.o.dryRun,
        ...(this.o.env !== undefined ? { env: this.o.env } : {}),
        onDryRun: (block) =>
          this.o.onLog?.('info', 'coredns dry-run: this block would be added to the Corefile', {
            configMap: cm,
            block,
          }),
      });
      if (r !== this.last) {
        if (r === 'updated') this.o.onLog?.('info', 'coredns Corefile patched with the mesh block', { configMap: cm });
        if (r === 'missing') this.o.onLog?.('warn', 'coredns ConfigMap (or its Corefile) not found', { configMap: cm });
      }
      this.last = r;
      return r;
    } catch (err) {
      this.o.onLog?.('warn', 'cannot patch the coredns Corefile', { configMap: cm, err: (err as Error).message });
      return undefined;
    }
  }

  stop(): void {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
  }
}

/** The sync a server's Config asks for (undefined: --coredns-integration off). `ns`: our namespace. */
export function corednsSyncFrom(
  config: Config,
  ns: string,
  client: Pick<KubeClient, 'find' | 'replace'>,
  isLeader: () => boolean,
  onLog?: (level: 'info' | 'warn', msg: string, fields?: Record<string, unknown>) => void,
): CorednsSync | undefined {
  if (config.corednsIntegration === 'off') return undefined;
  const ref = parseConfigMapRef(config.corednsConfigMap);
  if (typeof ref === 'string') return undefined; // rejected by resolveConfig
  const block = corednsBlock({
    meshDomain: config.meshDomain,
    clusterDomain: config.clusterDomain,
    rewriteTarget: config.corednsRewriteTarget ?? `otoroshi-xds-gateway.${ns}.svc.${config.clusterDomain}`,
  });
  return new CorednsSync({
    client,
    configMap: ref,
    block,
    dryRun: config.corednsIntegration === 'dry-run',
    isLeader,
    ...(onLog ? { onLog } : {}),
  });
}
