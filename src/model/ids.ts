// Otoroshi id rules (docs/decisions.md: "References").
import { createHash } from 'node:crypto';
import type { ConfigError, KubeObject, ObjectOrigin } from './types.js';

/**
 * Otoroshi's `slugifyWithSlash`: NFD-normalise, drop diacritics, map each of `` -._~!$'()*,;&=@:/``
 * (and space) to `-`, then replace `--`, `---`, `----` once each in that order (NOT a full collapse,
 * reproduced on purpose so ids match the ones Otoroshi generates), lowercase, trim.
 */
export function slugifyWithSlash(input: string): string {
  return input
    .normalize('NFD')
    .replace(/[\u0300-\u036f]/g, '')
    .replace(/[ \-._~!$'()*,;&=@:/]/g, '-')
    .replaceAll('--', '-')
    .replaceAll('---', '-')
    .replaceAll('----', '-')
    .toLowerCase()
    .trim();
}

export const ID_ANNOTATIONS = ['otoroshi.io/id', 'io.otoroshi/id'] as const;

export function namespaceOf(obj: KubeObject): string {
  const ns = obj.metadata.namespace;
  return typeof ns === 'string' && ns !== '' ? ns : 'default';
}

export function annotationsOf(obj: KubeObject): Record<string, string> {
  const a = obj.metadata.annotations;
  if (a === null || typeof a !== 'object' || Array.isArray(a)) return {};
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(a)) {
    if (typeof v === 'string') out[k] = v;
    else if (typeof v === 'number' || typeof v === 'boolean') out[k] = String(v);
  }
  return out;
}

/** The annotated Otoroshi id of a CR, if any. */
export function annotatedId(obj: KubeObject): string | undefined {
  const a = annotationsOf(obj);
  for (const k of ID_ANNOTATIONS) {
    const v = a[k];
    if (v !== undefined && v.trim() !== '') return v.trim();
  }
  return undefined;
}

/** Entity id of a CR: annotation, else `kubernetes-crd-import-<ns>-<name>` slugged. */
export function crdEntityId(obj: KubeObject): string {
  return annotatedId(obj) ?? slugifyWithSlash(`kubernetes-crd-import-${namespaceOf(obj)}-${obj.metadata.name}`);
}

/**
 * Otoroshi's ingress descriptor id:
 * slug(`kubernetes-service-<ns>-<ingress>-<host or wildcard>` + (`-<path>` if path ≠ `/`)).
 */
export function ingressDescriptorId(ns: string, ingress: string, host: string | undefined, path: string): string {
  const h = host === undefined || host === '' || host === '*' ? 'wildcard' : host;
  return slugifyWithSlash(`kubernetes-service-${ns}-${ingress}-${h}${path !== '/' ? `-${path}` : ''}`);
}

const ALNUM = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';

/**
 * Deterministic `[A-Za-z0-9]{length}` string derived from `parts` (buildModel is pure: no random).
 * Slight modulo bias is irrelevant here: these values are identifiers, and secrets derived this way
 * are only as secret as `seed` (see ModelSettings.secretSeed).
 */
export function derivedToken(length: number, ...parts: string[]): string {
  // sha512(counter, then NUL + part for each part), one hash per 64 characters: hashed in one update
  // (the same bytes as an update per piece, half the time for the 30,000 hashes of 10,000 apikeys).
  const tail = `\u0000${parts.join('\u0000')}`;
  const codes: number[] = [];
  for (let counter = 0; codes.length < length; counter++) {
    const digest = createHash('sha512').update(`${counter}${tail}`).digest();
    for (let i = 0; i < digest.length && codes.length < length; i++)
      codes.push(ALNUM.charCodeAt((digest[i] as number) % ALNUM.length));
  }
  return String.fromCharCode(...codes);
}

/** Kinds without a namespace: their key uses an empty namespace (`IngressClass//name`). */
export const CLUSTER_SCOPED_KINDS = new Set(['IngressClass', 'Namespace']);

/** `Apikey` is accepted as a spelling of `ApiKey`. */
export function normaliseKind(kind: string): string {
  return kind === 'Apikey' ? 'ApiKey' : kind;
}

/** Stable key `<Kind>/<ns>/<name>` (namespace `default` when absent, empty for cluster-scoped kinds). */
export function objectKey(obj: KubeObject): string {
  const kind = normaliseKind(obj.kind);
  const ns = CLUSTER_SCOPED_KINDS.has(kind)
    ? ''
    : typeof obj.metadata.namespace === 'string' && obj.metadata.namespace !== ''
      ? obj.metadata.namespace
      : 'default';
  return `${kind}/${ns}/${obj.metadata.name}`;
}

/**
 * The `metadata.name` of an `objectKey` whose object lives in `namespace`. A YAML file's names (and
 * namespaces) may contain `/`, so the key cannot be split on it: the name is what follows
 * `<Kind>/<namespace>/`. A key of another shape (no `/`) is its own name.
 */
export function nameOfKey(key: string, namespace: string): string {
  const slash = key.indexOf('/');
  if (slash < 0) return key;
  const rest = key.slice(slash + 1);
  for (const ns of [namespace, '']) if (rest.startsWith(`${ns}/`)) return rest.slice(ns.length + 1);
  return rest.slice(rest.indexOf('/') + 1);
}

/** The `file` / `doc` of an error about an object from `origin` (absent for objects not read from files). */
export function originFields(origin: ObjectOrigin): Pick<ConfigError, 'file' | 'doc'> {
  return {
    ...(origin.file !== undefined ? { file: origin.file } : {}),
    ...(origin.doc !== undefined ? { doc: origin.doc } : {}),
  };
}
