// `otoroshi-xds import FILE.json`: an Otoroshi JSON export (the admin API's /api/otoroshi.json,
// Otoroshi 1.4 and 1.5 shapes) → proxy.otoroshi.io CRs, one per entity, and the list of what
// could not be carried over. Pure: the CLI reads the file and prints.
import { isObject, type JsonObject } from '../model/problems.js';
import { OTOROSHI_GROUP } from '../model/build.js';

export const ID_ANNOTATION = 'otoroshi.io/id';

export interface ImportedObject {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; annotations: Record<string, string> };
  spec: JsonObject;
}

export interface ImportResult {
  objects: ImportedObject[];
  /** What was not carried over (or changed on the way), one line each. */
  notes: string[];
}

export interface ImportOptions {
  /** metadata.namespace of every object (none: the namespace `kubectl apply` uses). */
  namespace?: string;
}

/** Collections of an export that configure Otoroshi itself (never carried over: admins hold password hashes). */
const NOT_CARRIED: Readonly<Record<string, string>> = {
  admins: 'Otoroshi back-office admins (U2F)',
  simpleAdmins: 'Otoroshi back-office admins',
  errorTemplates: 'custom error pages',
  clientValidators: 'client certificate validators',
  scripts: 'Otoroshi scripts',
  dataExporters: 'data exporters',
  tenants: 'organizations',
  teams: 'teams',
  routes: 'routes of the new engine',
  backends: 'backends of the new engine',
  routeCompositions: 'route compositions',
  wasmPlugins: 'WASM plugins',
  stats: '',
  label: '',
  dateRaw: '',
  date: '',
  appConfig: '',
};

/** GlobalConfig fields the model reads (the rest of `config` configures Otoroshi's own features). */
const GLOBAL_FIELDS = [
  'maintenanceMode',
  'trustXForwarded',
  'ipFiltering',
  'throttlingQuota',
  'perIpThrottlingQuota',
  'limitConcurrentRequests',
  'maxConcurrentRequests',
  'endlessIpAddresses',
];

/** Entity fields that are Otoroshi bookkeeping, not configuration. */
const BOOKKEEPING = ['id', 'location', '_loc', 'createdAt', 'kind'];

/** A DNS-1123 subdomain from an Otoroshi id (lowercase, `[a-z0-9.-]`, at most 253 characters). */
export function nameFromId(id: string): string {
  const s = id
    .toLowerCase()
    .replace(/[^a-z0-9.-]+/g, '-')
    .replace(/^[^a-z0-9]+|[^a-z0-9]+$/g, '')
    .slice(0, 253)
    .replace(/[^a-z0-9]+$/g, '');
  return s === '' ? 'imported' : s;
}

/** Nulls dropped at every level (an export writes `null` for "not set"; our schemas want absent). */
export function withoutNulls(v: unknown): unknown {
  if (Array.isArray(v)) return v.filter((x) => x !== null).map(withoutNulls);
  if (isObject(v)) {
    const out: JsonObject = {};
    for (const [k, x] of Object.entries(v)) if (x !== null && x !== undefined) out[k] = withoutNulls(x);
    return out;
  }
  return v;
}

function omit(o: JsonObject, keys: readonly string[]): JsonObject {
  const out: JsonObject = {};
  for (const [k, v] of Object.entries(o)) if (!keys.includes(k)) out[k] = v;
  return out;
}

/** Otoroshi's `toHost` of the legacy `subdomain` / `env` / `domain` fields (its own case order). */
export function legacyHost(subdomain: string, env: string, domain: string): string {
  if (subdomain === '') return `${env}.${domain}`;
  return env === 'prod' ? `${subdomain}.${domain}` : `${subdomain}.${env}.${domain}`;
}

/** A 1.4 or 1.5 descriptor → a 1.5 spec: `groups` (from `groupId` too) and `hosts` (from the legacy host too). */
export function descriptorSpec(d: JsonObject): JsonObject {
  const spec = withoutNulls(
    omit(d, [...BOOKKEEPING, 'groupId', 'subdomain', 'env', 'domain', 'handleLegacyDomain']),
  ) as JsonObject;
  const groups = [
    ...(typeof d['groupId'] === 'string' ? [d['groupId']] : []),
    ...(Array.isArray(d['groups']) ? d['groups'].filter((g): g is string => typeof g === 'string') : []),
  ];
  if (groups.length > 0) spec['groups'] = [...new Set(groups)];
  const hosts = Array.isArray(d['hosts']) ? d['hosts'].filter((h): h is string => typeof h === 'string') : [];
  const legacy =
    d['handleLegacyDomain'] !== false && typeof d['domain'] === 'string' && typeof d['subdomain'] === 'string';
  if (legacy)
    hosts.push(
      legacyHost(d['subdomain'] as string, typeof d['env'] === 'string' ? d['env'] : 'prod', d['domain'] as string),
    );
  if (hosts.length > 0) spec['hosts'] = [...new Set(hosts)];
  // Otoroshi's default is true: an export written before the field existed keeps that meaning.
  if (d['enforceSecureCommunication'] === undefined) spec['enforceSecureCommunication'] = true;
  return spec;
}

/** An apikey → spec: the legacy `authorizedGroup` becomes `authorizedEntities: [group_<id>]`. */
export function apikeySpec(k: JsonObject): JsonObject {
  const spec = withoutNulls(omit(k, [...BOOKKEEPING, 'authorizedGroup'])) as JsonObject;
  const entities = Array.isArray(k['authorizedEntities'])
    ? k['authorizedEntities'].filter((e): e is string => typeof e === 'string')
    : [];
  if (typeof k['authorizedGroup'] === 'string' && k['authorizedGroup'] !== '')
    entities.unshift(`group_${k['authorizedGroup']}`);
  if (entities.length > 0) spec['authorizedEntities'] = [...new Set(entities)];
  return spec;
}

/** A certificate → spec: chain and key as they are; Otoroshi's computed facts (subject, from, to...) left out. */
export function certificateSpec(c: JsonObject): JsonObject {
  const spec = withoutNulls(
    omit(c, [
      ...BOOKKEEPING,
      'domain',
      'subject',
      'from',
      'to',
      'valid',
      'selfSigned',
      'caRef',
      'sans',
      'revoked',
      'password',
      'entityMetadata',
    ]),
  ) as JsonObject;
  return spec;
}

interface Collection {
  key: string;
  kind: string;
  /** The entity's id field. */
  idOf: (e: JsonObject) => string | undefined;
  spec: (e: JsonObject) => JsonObject;
}

const str = (o: JsonObject, k: string): string | undefined =>
  typeof o[k] === 'string' && o[k] !== '' ? (o[k] as string) : undefined;

const COLLECTIONS: readonly Collection[] = [
  {
    key: 'serviceGroups',
    kind: 'ServiceGroup',
    idOf: (e) => str(e, 'id'),
    spec: (e) => withoutNulls(omit(e, BOOKKEEPING)) as JsonObject,
  },
  { key: 'serviceDescriptors', kind: 'ServiceDescriptor', idOf: (e) => str(e, 'id'), spec: descriptorSpec },
  { key: 'apiKeys', kind: 'ApiKey', idOf: (e) => str(e, 'clientId'), spec: apikeySpec },
  { key: 'certificates', kind: 'Certificate', idOf: (e) => str(e, 'id'), spec: certificateSpec },
  {
    key: 'jwtVerifiers',
    kind: 'JwtVerifier',
    idOf: (e) => str(e, 'id'),
    spec: (e) => withoutNulls(omit(e, BOOKKEEPING)) as JsonObject,
  },
  {
    key: 'authConfigs',
    kind: 'AuthModule',
    idOf: (e) => str(e, 'id'),
    spec: (e) => withoutNulls(omit(e, BOOKKEEPING)) as JsonObject,
  },
  {
    key: 'tcpServices',
    kind: 'TcpService',
    idOf: (e) => str(e, 'id'),
    spec: (e) => withoutNulls(omit(e, BOOKKEEPING)) as JsonObject,
  },
];

/** Things a user should know about one imported entity (what changes meaning on the way). */
function entityNotes(kind: string, id: string, raw: JsonObject, spec: JsonObject): string[] {
  const out: string[] = [];
  if (kind === 'ServiceDescriptor') {
    if (spec['enforceSecureCommunication'] === true)
      out.push(
        `${kind} ${id}: enforceSecureCommunication is true, and Otoroshi's state/claim challenge is not ` +
          `implemented: the backend gets no Otoroshi-State / Otoroshi-Claim (set it to false once the backend no ` +
          `longer needs it)`,
      );
    for (const f of ['authConfigRef', 'clientValidatorRef'])
      if (typeof spec[f] === 'string')
        out.push(
          `${kind} ${id}: ${f} is not supported (auth modules / client validators): kept, ignored with a warning`,
        );
    if (typeof raw['domain'] === 'string' && typeof raw['subdomain'] === 'string')
      out.push(
        `${kind} ${id}: legacy subdomain/env/domain written as hosts: ` +
          `${String((spec['hosts'] as string[]).join(', '))}`,
      );
  }
  if (kind === 'Certificate' && typeof raw['to'] === 'number' && raw['to'] < Date.now())
    out.push(`${kind} ${id}: expired on ${new Date(raw['to']).toISOString()} (kept; validate warns)`);
  return out;
}

/** The GlobalConfig of an export's `config`, and the names of the fields left out. */
function globalConfig(config: JsonObject): { spec: JsonObject; left: string[] } {
  const spec: JsonObject = {};
  const left: string[] = [];
  for (const [k, v] of Object.entries(config)) {
    if (v === null || v === undefined) continue;
    if (GLOBAL_FIELDS.includes(k)) spec[k] = withoutNulls(v);
    else left.push(k);
  }
  return { spec, left: left.sort() };
}

export class ImportError extends Error {}

/** Converts a parsed export. Throws ImportError when `json` is not an Otoroshi export. */
export function importOtoroshiExport(json: unknown, opts: ImportOptions = {}): ImportResult {
  if (!isObject(json)) throw new ImportError('not an Otoroshi export: expected a JSON object');
  const known = ['config', ...COLLECTIONS.map((c) => c.key)];
  if (!Object.keys(json).some((k) => known.includes(k)))
    throw new ImportError(`not an Otoroshi export: none of ${known.join(', ')} is present`);
  const objects: ImportedObject[] = [];
  const notes: string[] = [];
  const apiVersion = `${OTOROSHI_GROUP}/v1alpha1`;
  const meta = (name: string, id?: string): ImportedObject['metadata'] => ({
    name,
    ...(opts.namespace !== undefined ? { namespace: opts.namespace } : {}),
    annotations: id !== undefined ? { [ID_ANNOTATION]: id } : {},
  });
  if (isObject(json['config'])) {
    const g = globalConfig(json['config']);
    objects.push({ apiVersion, kind: 'GlobalConfig', metadata: meta('global-config'), spec: g.spec });
    if (g.left.length > 0) notes.push(`config: not carried over (Otoroshi's own settings): ${g.left.join(', ')}`);
  }
  for (const c of COLLECTIONS) {
    const list = json[c.key];
    if (list === undefined || list === null) continue;
    if (!Array.isArray(list)) {
      notes.push(`${c.key}: not a list: skipped`);
      continue;
    }
    const used = new Set<string>();
    list.forEach((e, i) => {
      const id = isObject(e) ? c.idOf(e) : undefined;
      if (!isObject(e) || id === undefined) {
        notes.push(`${c.key}[${i}]: no ${c.kind === 'ApiKey' ? 'clientId' : 'id'}: skipped`);
        return;
      }
      let name = nameFromId(id);
      for (let n = 2; used.has(name); n++) name = `${nameFromId(id).slice(0, 248)}-${n}`;
      used.add(name);
      const spec = c.spec(e);
      objects.push({ apiVersion, kind: c.kind, metadata: meta(name, id), spec });
      notes.push(...entityNotes(c.kind, id, e, spec));
    });
  }
  for (const [k, v] of Object.entries(json)) {
    if (known.includes(k) || NOT_CARRIED[k] === '') continue;
    const n = Array.isArray(v) ? v.length : 1;
    if (Array.isArray(v) && n === 0) continue;
    const why =
      NOT_CARRIED[k] !== undefined
        ? ` (${NOT_CARRIED[k]}: not part of what otoroshi-xds serves)`
        : ' (unknown to otoroshi-xds)';
    notes.push(`${k}: ${n} not carried over${why}`);
  }
  return { objects, notes };
}
