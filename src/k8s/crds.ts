// CustomResourceDefinitions of the ten proxy.otoroshi.io kinds, generated from the ajv schemas of
// src/model/schemas.ts (one source of truth: file mode and `kubectl apply` check the same rules).
// `scripts/gen-crds.mjs` writes them to manifests/crds/; test/k8s-manifests.test.ts fails when the
// checked-in files drift.
//
// Conversion to a Kubernetes *structural* schema:
//  * our `x-oxds-*` keywords are dropped;
//  * `x-kubernetes-int-or-string` keeps only the marker (the ajv `anyOf` pair is implied);
//  * `type: [T, 'null']` → `type: T, nullable: true`; `type: ['integer', 'string']` →
//    int-or-string; any other union (e.g. `targets`: array or object) → an untyped node with
//    `x-kubernetes-preserve-unknown-fields` (its shape is checked by the controller's ajv pass);
//  * objects keep unknown fields (`x-kubernetes-preserve-unknown-fields: true`), as Otoroshi ignores
//    fields it does not know: existing CRs with more fields stay valid; types, enums, bounds and
//    required fields are enforced by the API server;
//  * maps whose values are not one simple type, and objects/arrays without a declared shape,
//    become preserve-unknown nodes.
import YAML from 'yaml';
import { SPEC_SCHEMAS } from '../model/schemas.js';
import {
  OTOROSHI_GROUP,
  OTOROSHI_KINDS,
  OTOROSHI_STORAGE_VERSION,
  OTOROSHI_VERSIONS,
  type OtoroshiKind,
} from './resources.js';

type Schema = Record<string, unknown>;

const SIMPLE = new Set(['string', 'integer', 'number', 'boolean']);
const KEEP = [
  'description',
  'enum',
  'minimum',
  'maximum',
  'minLength',
  'maxLength',
  'pattern',
  'format',
  'default',
  'minItems',
  'maxItems',
  'required',
];

/** One ajv schema node → a structural OpenAPI v3 node. Pure. */
export function toStructural(s: Schema): Schema {
  const out: Schema = {};
  for (const k of KEEP) if (s[k] !== undefined) out[k] = s[k];
  if (s['x-kubernetes-int-or-string'] === true) {
    out['x-kubernetes-int-or-string'] = true;
    return out;
  }
  let type = s['type'];
  if (Array.isArray(type)) {
    const nonNull = type.filter((t) => t !== 'null');
    if (nonNull.length === 1) {
      type = nonNull[0];
      out['nullable'] = true;
    } else if (nonNull.length === 2 && nonNull.includes('integer') && nonNull.includes('string')) {
      delete out['enum'];
      out['x-kubernetes-int-or-string'] = true;
      return out;
    } else {
      return {
        ...(out['description'] ? { description: out['description'] } : {}),
        'x-kubernetes-preserve-unknown-fields': true,
      };
    }
  }
  if (type === undefined) {
    if (s['properties'] || s['additionalProperties']) type = 'object';
    else if (s['items']) type = 'array';
    else return { 'x-kubernetes-preserve-unknown-fields': true };
  }
  out['type'] = type;
  if (type === 'object') {
    const props = s['properties'] as Record<string, Schema> | undefined;
    const addl = s['additionalProperties'];
    if (props) {
      out['properties'] = Object.fromEntries(Object.entries(props).map(([k, v]) => [k, toStructural(v)]));
      out['x-kubernetes-preserve-unknown-fields'] = true;
    } else if (addl && typeof addl === 'object') {
      const v = toStructural(addl as Schema);
      if (typeof v['type'] === 'string' && SIMPLE.has(v['type'])) out['additionalProperties'] = v;
      else out['x-kubernetes-preserve-unknown-fields'] = true;
    } else out['x-kubernetes-preserve-unknown-fields'] = true;
    const anyOf = s['anyOf'] as Schema[] | undefined;
    // value validations only (no types): `anyOf: [{required: [..]}, ...]` is allowed
    if (anyOf && anyOf.every((b) => Object.keys(b).every((k) => k === 'required')))
      out['anyOf'] = anyOf.map((b) => ({ required: b['required'] }));
  } else if (type === 'array') {
    const items = s['items'] as Schema | undefined;
    out['items'] = items ? toStructural(items) : { 'x-kubernetes-preserve-unknown-fields': true };
  }
  return out;
}

const STATUS_SCHEMA: Schema = {
  type: 'object',
  description: 'Written by the otoroshi-xds leader: whether the object is accepted, and why not.',
  properties: {
    state: { type: 'string', enum: ['valid', 'invalid'] },
    observedGeneration: { type: 'integer' },
    conditions: {
      type: 'array',
      items: {
        type: 'object',
        required: ['type', 'status'],
        properties: {
          type: { type: 'string' },
          status: { type: 'string', enum: ['True', 'False', 'Unknown'] },
          reason: { type: 'string' },
          message: { type: 'string' },
          observedGeneration: { type: 'integer' },
          lastTransitionTime: { type: 'string', format: 'date-time' },
        },
      },
    },
  },
  'x-kubernetes-preserve-unknown-fields': true,
};

interface PrinterColumn {
  name: string;
  type: string;
  jsonPath: string;
  description?: string;
  priority?: number;
}

function printerColumns(kind: string): PrinterColumn[] {
  const cols: PrinterColumn[] = [];
  if (kind === 'ServiceDescriptor') {
    cols.push({ name: 'Hosts', type: 'string', jsonPath: '.spec.hosts', description: 'hosts served' });
    cols.push({ name: 'Targets', type: 'string', jsonPath: '.spec.targets[*].url', description: 'target URLs' });
  }
  if (kind === 'ApiKey') cols.push({ name: 'Client', type: 'string', jsonPath: '.spec.clientName' });
  if (kind === 'TcpService') cols.push({ name: 'Port', type: 'integer', jsonPath: '.spec.port' });
  cols.push({
    name: 'Status',
    type: 'string',
    jsonPath: '.status.state',
    description: 'valid or invalid (see conditions)',
  });
  cols.push({ name: 'Reason', type: 'string', jsonPath: '.status.conditions[0].reason', priority: 1 });
  cols.push({ name: 'Age', type: 'date', jsonPath: '.metadata.creationTimestamp' });
  return cols;
}

/** The CRD of one kind. Pure. */
export function crdFor(k: OtoroshiKind): Schema {
  const spec = SPEC_SCHEMAS[k.kind];
  if (!spec) throw new Error(`no schema for ${k.kind}`);
  const openAPIV3Schema: Schema = {
    type: 'object',
    properties: {
      apiVersion: { type: 'string' },
      kind: { type: 'string' },
      metadata: { type: 'object' },
      spec: toStructural(spec),
      status: STATUS_SCHEMA,
    },
  };
  return {
    apiVersion: 'apiextensions.k8s.io/v1',
    kind: 'CustomResourceDefinition',
    metadata: {
      name: `${k.plural}.${OTOROSHI_GROUP}`,
      labels: { 'app.kubernetes.io/name': 'otoroshi-xds', 'app.kubernetes.io/part-of': 'otoroshi-xds' },
    },
    spec: {
      group: OTOROSHI_GROUP,
      names: {
        kind: k.kind,
        listKind: `${k.kind}List`,
        plural: k.plural,
        singular: k.singular,
        shortNames: k.shortNames,
        categories: ['otoroshi'],
      },
      scope: 'Namespaced',
      versions: OTOROSHI_VERSIONS.map((v) => ({
        name: v,
        served: true,
        storage: v === OTOROSHI_STORAGE_VERSION,
        schema: { openAPIV3Schema },
        subresources: { status: {} },
        additionalPrinterColumns: printerColumns(k.kind),
      })),
    },
  };
}

export function allCrds(): Array<{ file: string; crd: Schema }> {
  return OTOROSHI_KINDS.map((k) => ({ file: `${k.plural}.yaml`, crd: crdFor(k) }));
}

export const GENERATED_HEADER = '# Generated by scripts/gen-crds.mjs from src/model/schemas.ts: do not edit.\n';

/** The files of manifests/crds/ (name → text), exactly as scripts/gen-crds.mjs writes them. */
export function renderCrdFiles(): Map<string, string> {
  const out = new Map<string, string>();
  const files: string[] = [];
  for (const { file, crd } of allCrds()) {
    out.set(file, GENERATED_HEADER + YAML.stringify(crd, { lineWidth: 0, aliasDuplicateObjects: false }));
    files.push(file);
  }
  out.set(
    'kustomization.yaml',
    GENERATED_HEADER +
      YAML.stringify({ apiVersion: 'kustomize.config.k8s.io/v1beta1', kind: 'Kustomization', resources: files }),
  );
  return out;
}

/** Kubernetes structural-schema violations of one OpenAPI node (empty = structural). Pure. */
export function structuralProblems(s: Schema, at = 'openAPIV3Schema', inJunctor = false): string[] {
  const out: string[] = [];
  if ('$ref' in s) out.push(`${at}: $ref is not allowed`);
  if (s['properties'] && s['additionalProperties'] !== undefined)
    out.push(`${at}: properties and additionalProperties together`);
  if (inJunctor) {
    for (const k of [
      'type',
      'properties',
      'items',
      'additionalProperties',
      'nullable',
      'default',
      'description',
      'x-kubernetes-preserve-unknown-fields',
    ])
      if (k in s) out.push(`${at}: ${k} inside anyOf/allOf/oneOf/not`);
  } else if (
    s['type'] === undefined &&
    s['x-kubernetes-int-or-string'] !== true &&
    s['x-kubernetes-preserve-unknown-fields'] !== true
  ) {
    out.push(`${at}: no type`);
  }
  if (Array.isArray(s['type'])) out.push(`${at}: type must be a single string`);
  if (s['type'] === 'array' && !s['items'] && !inJunctor) out.push(`${at}: array without items`);
  for (const [k, v] of Object.entries((s['properties'] as Record<string, Schema> | undefined) ?? {}))
    out.push(...structuralProblems(v, `${at}.properties.${k}`));
  if (s['items'] && typeof s['items'] === 'object')
    out.push(...structuralProblems(s['items'] as Schema, `${at}.items`));
  if (s['additionalProperties'] && typeof s['additionalProperties'] === 'object')
    out.push(...structuralProblems(s['additionalProperties'] as Schema, `${at}.additionalProperties`));
  for (const j of ['anyOf', 'allOf', 'oneOf'])
    for (const [i, b] of ((s[j] as Schema[] | undefined) ?? []).entries())
      out.push(...structuralProblems(b, `${at}.${j}[${i}]`, true));
  for (const k of Object.keys(s))
    if (k.startsWith('x-') && !k.startsWith('x-kubernetes-')) out.push(`${at}: unknown extension ${k}`);
  return out;
}
