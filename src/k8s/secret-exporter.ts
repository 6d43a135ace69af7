// Exported secrets (docs/decisions.md: "Exported secrets", "Restarting dependant deployments").
//
// Input: the desired secrets, a generic list `{namespace, name, type, data, owner}` — ApiKey
// `exportSecret` (apikeySecrets below) and, later, Certificate `exportSecret` (certificateSecret).
// sync() creates the missing ones, updates the ones whose type/data/ownership differ, and deletes
// secrets that carry our label and are no longer desired. Secrets without our label are never
// deleted nor overwritten (a name clash is reported). Owner references point at the CR (only
// when it lives in the secret's namespace: Kubernetes forbids cross-namespace owners).
// Optionally, Deployments that mount a created/updated secret are restarted (docs/decisions.md: "Restarting dependant
// deployments").
import { createHash } from 'node:crypto';
import type { ApiKey, StoredObject, TlsCertificate } from '../model/types.js';
import { certificateSecretData } from '../ca/export.js';
import { APIKEY_SECRET_TYPE } from '../model/apikey.js';
export { APIKEY_SECRET_TYPE };
import {
  KubeApiError,
  KubeClient,
  collectionPath,
  objectPath,
  type KubeList,
  type KubeObjectJson,
  type OwnerReference,
} from './client.js';

export const MANAGED_BY_LABEL = 'app.kubernetes.io/managed-by';
export const MANAGED_BY_VALUE = 'otoroshi-xds';
export const RESTARTED_AT_ANNOTATION = 'otoroshi.io/restartedAt';

export interface DesiredSecret {
  namespace: string;
  name: string;
  type: string;
  /** Plain values (base64-encoded on write). */
  data: Record<string, string>;
  owner: { apiVersion: string; kind: string; name: string; namespace: string; uid?: string };
  annotations?: Record<string, string>;
}

export interface SyncResult {
  created: string[];
  updated: string[];
  deleted: string[];
  conflicts: string[];
  restarted: string[];
}

export interface SecretExporterOptions {
  /** Namespaces where our secrets may live (for garbage collection); `['*']` = all. */
  namespaces: string[];
  restartDependantDeployments?: boolean;
  onLog?: (level: 'info' | 'warn', msg: string, fields?: Record<string, unknown>) => void;
  now?: () => Date;
}

/** `ns/name` or `name` (in the CR's namespace). */
export function secretRef(secretName: string, crNamespace: string): { namespace: string; name: string } {
  const i = secretName.indexOf('/');
  return i > 0
    ? { namespace: secretName.slice(0, i), name: secretName.slice(i + 1) }
    : { namespace: crNamespace, name: secretName };
}

/** ApiKey secrets (type otoroshi.io/apikey-secret) for every ApiKey CR with `exportSecret: true`. Pure. */
/** The owner reference of an exported secret: the CR it comes from. */
function ownerOf(so: StoredObject, ns: string): DesiredSecret['owner'] {
  const owner: DesiredSecret['owner'] = {
    apiVersion: so.object.apiVersion,
    kind: so.object.kind,
    name: so.object.metadata.name,
    namespace: ns,
  };
  if (so.object.metadata.uid) owner.uid = so.object.metadata.uid;
  return owner;
}

export function apikeySecrets(apikeys: readonly ApiKey[], objects: readonly StoredObject[]): DesiredSecret[] {
  const byKey = new Map(objects.map((o) => [o.key, o]));
  const out: DesiredSecret[] = [];
  for (const k of apikeys) {
    const so = byKey.get(k.sourceKey);
    if (!so) continue;
    const spec = (so.object.spec ?? {}) as Record<string, unknown>;
    if (spec['exportSecret'] !== true) continue;
    const ns = so.object.metadata.namespace ?? 'default';
    const secretName =
      typeof spec['secretName'] === 'string' && spec['secretName'] !== ''
        ? spec['secretName']
        : `${so.object.metadata.name}-apikey`;
    const ref = secretRef(secretName, ns);
    const userPwd = `${k.clientId}:${k.clientSecret}`;
    const basic = Buffer.from(userPwd).toString('base64');
    const owner = ownerOf(so, ns);
    out.push({
      ...ref,
      type: APIKEY_SECRET_TYPE,
      data: {
        clientId: k.clientId,
        clientSecret: k.clientSecret,
        userPwd,
        basicAuth: basic,
        basicAuthHeader: `Basic ${basic}`,
      },
      owner,
      annotations: { 'otoroshi.io/kind': 'crd/apikey', 'otoroshi.io/id': k.clientId },
    });
  }
  return out;
}

/** A Certificate secret (kubernetes.io/tls) from a PEM chain (leaf first) and key. Pure. */
export function certificateSecret(
  ref: { namespace: string; name: string },
  chainPem: string,
  keyPem: string,
  owner: DesiredSecret['owner'],
  id: string,
): DesiredSecret {
  return {
    ...ref,
    type: 'kubernetes.io/tls',
    data: certificateSecretData({ certificateChain: chainPem, privateKey: keyPem }),
    owner,
    annotations: { 'otoroshi.io/kind': 'crd/cert', 'otoroshi.io/id': id },
  };
}

/** TLS secrets of every Certificate CR with `exportSecret: true` (issued or user-provided). Pure. */
export function certificateSecrets(
  certs: readonly TlsCertificate[],
  objects: readonly StoredObject[],
): DesiredSecret[] {
  const byKey = new Map(objects.map((o) => [o.key, o]));
  const out: DesiredSecret[] = [];
  for (const c of certs) {
    if (c.exportSecret === undefined) continue;
    const so = byKey.get(c.sourceKey);
    if (!so) continue;
    const ns = so.object.metadata.namespace ?? 'default';
    const owner = ownerOf(so, ns);
    out.push(certificateSecret(c.exportSecret, c.certificateChain, c.privateKey, owner, c.id ?? c.secretName));
  }
  return out;
}

function encode(data: Record<string, string>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const k of Object.keys(data).sort()) out[k] = Buffer.from(data[k]!).toString('base64');
  return out;
}

function ownerRef(d: DesiredSecret): OwnerReference[] | undefined {
  if (d.owner.namespace !== d.namespace || !d.owner.uid) return undefined;
  return [
    {
      apiVersion: d.owner.apiVersion,
      kind: d.owner.kind,
      name: d.owner.name,
      uid: d.owner.uid,
      controller: true,
      blockOwnerDeletion: false,
    },
  ];
}

/** Kinds of the secrets this exporter writes (`otoroshi.io/kind`). */
const EXPORTED_KINDS = new Set(['crd/apikey', 'crd/cert']);

/**
 * A secret this exporter wrote: our label and an exported kind. Other secrets of ours (the CA
 * Secret, labelled `otoroshi.io/kind: ca`) are never overwritten nor deleted by the reconciliation.
 */
function isOurs(s: KubeObjectJson): boolean {
  return (
    s.metadata.labels?.[MANAGED_BY_LABEL] === MANAGED_BY_VALUE &&
    EXPORTED_KINDS.has(s.metadata.annotations?.['otoroshi.io/kind'] ?? '')
  );
}

function manifest(d: DesiredSecret, existing?: KubeObjectJson): KubeObjectJson {
  const owners = ownerRef(d);
  return {
    apiVersion: 'v1',
    kind: 'Secret',
    metadata: {
      name: d.name,
      namespace: d.namespace,
      labels: { ...(existing?.metadata.labels ?? {}), [MANAGED_BY_LABEL]: MANAGED_BY_VALUE },
      annotations: { ...(existing?.metadata.annotations ?? {}), ...(d.annotations ?? {}) },
      ...(owners ? { ownerReferences: owners } : {}),
      ...(existing?.metadata.resourceVersion ? { resourceVersion: existing.metadata.resourceVersion } : {}),
    },
    type: d.type,
    data: encode(d.data),
  };
}

function differs(want: KubeObjectJson, cur: KubeObjectJson): boolean {
  const pick = (o: KubeObjectJson): string =>
    JSON.stringify([
      o['type'],
      o['data'] ?? {},
      o.metadata.labels?.[MANAGED_BY_LABEL],
      o.metadata.ownerReferences ?? [],
      Object.entries(o.metadata.annotations ?? {})
        .filter(([k]) => k.startsWith('otoroshi.io/'))
        .sort(),
    ]);
  const sortData = (o: KubeObjectJson): KubeObjectJson => ({
    ...o,
    data: encodeSorted(o['data'] as Record<string, string> | undefined),
  });
  return pick(sortData(want)) !== pick(sortData(cur));
}

function encodeSorted(d: Record<string, string> | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  for (const k of Object.keys(d ?? {}).sort()) out[k] = d![k]!;
  return out;
}

export class SecretExporter {
  constructor(
    private readonly client: KubeClient,
    private readonly opts: SecretExporterOptions,
  ) {}

  async sync(desired: readonly DesiredSecret[]): Promise<SyncResult> {
    const result: SyncResult = { created: [], updated: [], deleted: [], conflicts: [], restarted: [] };
    const wanted = new Map(desired.map((d) => [`${d.namespace}/${d.name}`, d]));
    // ours, currently in the cluster
    const ours = new Map<string, KubeObjectJson>();
    const all = this.opts.namespaces.includes('*') || this.opts.namespaces.length === 0;
    const lists: KubeList[] = all
      ? [
          await this.client.list(collectionPath('v1', 'secrets'), {
            labelSelector: `${MANAGED_BY_LABEL}=${MANAGED_BY_VALUE}`,
          }),
        ]
      : await Promise.all(
          this.opts.namespaces.map((ns) =>
            this.client.list(collectionPath('v1', 'secrets', ns), {
              labelSelector: `${MANAGED_BY_LABEL}=${MANAGED_BY_VALUE}`,
            }),
          ),
        );
    for (const l of lists)
      for (const s of l.items) if (isOurs(s)) ours.set(`${s.metadata.namespace}/${s.metadata.name}`, s);
    const changed: Array<{ namespace: string; name: string }> = [];
    for (const [key, d] of wanted) {
      let cur = ours.get(key);
      if (!cur) {
        cur = await this.client.find(objectPath('v1', 'secrets', d.namespace, d.name));
        if (cur && !isOurs(cur)) {
          result.conflicts.push(key);
          this.opts.onLog?.('warn', 'an exported secret would overwrite a secret that is not ours: skipped', {
            secret: key,
            owner: `${d.owner.kind} ${d.owner.namespace}/${d.owner.name}`,
          });
          continue;
        }
      }
      try {
        if (!cur) {
          await this.client.create(collectionPath('v1', 'secrets', d.namespace), manifest(d));
          result.created.push(key);
          changed.push(d);
        } else {
          const want = manifest(d, cur);
          if (differs(want, cur)) {
            await this.client.replace(objectPath('v1', 'secrets', d.namespace, d.name), want);
            result.updated.push(key);
            changed.push(d);
          }
        }
      } catch (err) {
        this.opts.onLog?.('warn', 'secret export failed', { secret: key, err: (err as Error).message });
      }
    }
    for (const [key, s] of ours) {
      if (wanted.has(key)) continue;
      try {
        await this.client.delete(objectPath('v1', 'secrets', s.metadata.namespace ?? 'default', s.metadata.name));
        result.deleted.push(key);
      } catch (err) {
        if (!(err instanceof KubeApiError && err.statusCode === 404))
          this.opts.onLog?.('warn', 'secret delete failed', { secret: key, err: (err as Error).message });
      }
    }
    if (this.opts.restartDependantDeployments && changed.length > 0)
      result.restarted = await this.restartDependants(changed);
    return result;
  }

  /**
   * docs/decisions.md: "Restarting dependant deployments": annotate the pod template of Deployments that use a changed
   * secret.
   */
  private async restartDependants(changed: ReadonlyArray<{ namespace: string; name: string }>): Promise<string[]> {
    const restarted: string[] = [];
    const byNs = new Map<string, Set<string>>();
    for (const c of changed) {
      const set = byNs.get(c.namespace) ?? new Set<string>();
      set.add(c.name);
      byNs.set(c.namespace, set);
    }
    const at = (this.opts.now?.() ?? new Date()).toISOString();
    for (const [ns, names] of byNs) {
      let list: KubeList;
      try {
        list = await this.client.list(collectionPath('apps/v1', 'deployments', ns));
      } catch (err) {
        this.opts.onLog?.('warn', 'cannot list deployments to restart', { namespace: ns, err: (err as Error).message });
        continue;
      }
      for (const dep of list.items) {
        if (!secretsUsedBy(dep).some((s) => names.has(s))) continue;
        try {
          await this.client.patch(
            objectPath('apps/v1', 'deployments', ns, dep.metadata.name),
            { spec: { template: { metadata: { annotations: { [RESTARTED_AT_ANNOTATION]: at } } } } },
            'strategic',
          );
          restarted.push(`${ns}/${dep.metadata.name}`);
        } catch (err) {
          this.opts.onLog?.('warn', 'deployment restart failed', {
            deployment: `${ns}/${dep.metadata.name}`,
            err: (err as Error).message,
          });
        }
      }
    }
    return restarted;
  }
}

/** Secret names a Deployment's pod template mounts or reads (volumes, env, envFrom). Pure. */
export function secretsUsedBy(dep: KubeObjectJson): string[] {
  const pod = (
    (dep['spec'] as Record<string, unknown> | undefined)?.['template'] as Record<string, unknown> | undefined
  )?.['spec'] as Record<string, unknown> | undefined;
  if (!pod) return [];
  const out = new Set<string>();
  for (const v of (pod['volumes'] as Array<Record<string, unknown>> | undefined) ?? []) {
    const s = (v['secret'] as { secretName?: string } | undefined)?.secretName;
    if (s) out.add(s);
    for (const src of (v['projected'] as { sources?: Array<{ secret?: { name?: string } }> } | undefined)?.sources ??
      [])
      if (src.secret?.name) out.add(src.secret.name);
  }
  const containers = [
    ...((pod['containers'] as Array<Record<string, unknown>> | undefined) ?? []),
    ...((pod['initContainers'] as Array<Record<string, unknown>> | undefined) ?? []),
  ];
  for (const c of containers) {
    for (const e of (c['env'] as Array<{ valueFrom?: { secretKeyRef?: { name?: string } } }> | undefined) ?? [])
      if (e.valueFrom?.secretKeyRef?.name) out.add(e.valueFrom.secretKeyRef.name);
    for (const e of (c['envFrom'] as Array<{ secretRef?: { name?: string } }> | undefined) ?? [])
      if (e.secretRef?.name) out.add(e.secretRef.name);
  }
  return [...out];
}

/** A short fingerprint of desired secrets (to skip a sync when nothing changed). */
export function desiredFingerprint(desired: readonly DesiredSecret[]): string {
  return createHash('sha256')
    .update(
      JSON.stringify(desired.map((d) => [d.namespace, d.name, d.type, encode(d.data), d.owner, d.annotations ?? {}])),
    )
    .digest('hex');
}
