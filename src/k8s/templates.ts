// KubernetesConfig `templates`: per-kind JSON objects merged *under* each
// CR's spec (the spec wins; arrays are replaced, not concatenated). Keys: the kind's singular
// (`service-descriptor`, as Otoroshi's code reads) or plural (`service-descriptors`, as its shipped
// default config writes — Otoroshi never picks those up; we accept both). The value `"default"`
// means Otoroshi's built-in template: our model's defaults already are that, so it is a no-op.
import fs from 'node:fs';
import { createRequire } from 'node:module';
import type * as YamlLib from 'yaml';
import type { KubeObjectJson } from './client.js';
import { OTOROSHI_KINDS, isOtoroshiApiVersion } from './resources.js';

export type Templates = Readonly<Record<string, unknown>>;

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

/** Deep merge, `over` wins; arrays and scalars replace. Pure. */
export function deepMerge(base: unknown, over: unknown): unknown {
  if (!isPlainObject(base) || !isPlainObject(over)) return over === undefined ? base : over;
  const out: Record<string, unknown> = { ...base };
  for (const [k, v] of Object.entries(over)) out[k] = deepMerge(base[k], v);
  return out;
}

/** The template of a kind, if any. */
export function templateFor(kind: string, templates: Templates): Record<string, unknown> | undefined {
  const k = OTOROSHI_KINDS.find((x) => x.kind === kind);
  if (!k) return undefined;
  for (const key of [k.singular, k.plural]) {
    const t = templates[key];
    if (isPlainObject(t)) return t;
  }
  return undefined;
}

/** The object with its kind's template merged under its spec (unchanged when there is none). Pure. */
export function applyTemplate(obj: KubeObjectJson, templates: Templates): KubeObjectJson {
  if (!obj.apiVersion || !isOtoroshiApiVersion(obj.apiVersion) || !obj.kind) return obj;
  const t = templateFor(obj.kind, templates);
  if (!t) return obj;
  return { ...obj, spec: deepMerge(t, obj['spec'] ?? {}) };
}

/** Reads a templates file (JSON or YAML object). Throws a readable error. */
export function loadTemplates(file: string): Templates {
  let v: unknown;
  try {
    // The yaml library is loaded here only: a server without a templates file never needs it.
    v = (createRequire(import.meta.url)('yaml') as typeof YamlLib).parse(fs.readFileSync(file, 'utf8'));
  } catch (err) {
    throw new Error(`--templates ${file}: ${(err as Error).message}`);
  }
  if (!isPlainObject(v)) throw new Error(`--templates ${file}: expected an object of per-kind templates`);
  const known = new Set(OTOROSHI_KINDS.flatMap((k) => [k.singular, k.plural]));
  const unknown = Object.keys(v).filter((k) => !known.has(k));
  if (unknown.length > 0)
    throw new Error(
      `--templates ${file}: unknown template keys ${unknown.join(', ')} (expected ${[...known].join(', ')})`,
    );
  return v;
}
