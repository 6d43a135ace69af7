// ApiKey CR → ApiKey (otoroshi-model.md §7.1, §7.5).
import type { ApiKey, StoredObject } from './types.js';
import { derivedToken, namespaceOf } from './ids.js';
import { asObject, bool, num, str, strArray, strMap, type Problems } from './problems.js';
import { untranslated, type ModelSettings, type RefResolver } from './descriptor.js';

export const DEFAULT_QUOTA = 10000000;

const TRANSLATED = new Set([
  'clientId', 'clientSecret', 'clientName', 'enabled', 'readOnly', 'allowClientIdOnly', 'throttlingQuota',
  'dailyQuota', 'monthlyQuota', 'validUntil', 'tags', 'metadata', 'authorizedEntities', 'authorizedGroup',
]);

/** Prefixes Otoroshi uses in authorizedEntities. A string without one is a group id. */
const ENTITY_PREFIXES = ['group_', 'service_', 'route_', 'routecomp_'];

/**
 * clientId / clientSecret when the spec has none: derived (NOT random: buildModel is pure and must
 * give the same key on every rebuild) from sha512(seed, uid, ns, name). See ModelSettings.secretSeed.
 */
export function derivedCredentials(seed: string, uid: string, ns: string, name: string): { clientId: string; clientSecret: string } {
  return {
    clientId: derivedToken(64, 'clientId', seed, uid, ns, name),
    clientSecret: derivedToken(128, 'clientSecret', seed, uid, ns, name),
  };
}

export function buildApiKey(so: StoredObject, s: ModelSettings, refs: RefResolver, p: Problems): ApiKey | undefined {
  const obj = so.object;
  const spec = asObject(obj.spec);
  const ns = namespaceOf(obj);
  const name = obj.metadata.name;
  const uid = typeof obj.metadata.uid === 'string' || typeof obj.metadata.uid === 'number' ? String(obj.metadata.uid) : '';
  const derived = derivedCredentials(s.secretSeed, uid, ns, name);
  const clientId = str(spec, 'clientId') ?? derived.clientId;
  let clientSecret = str(spec, 'clientSecret');
  if (clientSecret === undefined) {
    clientSecret = derived.clientSecret;
    p.warn(
      'OXDS_MISSING_FIELD',
      `no clientSecret: a deterministic one was derived from the object identity${s.secretSeed === '' ? ' (no secret seed configured: it is guessable, set clientSecret)' : ''}`,
      'spec.clientSecret',
    );
  }
  if (spec['secretName'] !== undefined || spec['exportSecret'] === true) {
    p.warn('OXDS_INVALID_FIELD', 'secretName/exportSecret (apikey secrets) are not supported yet: the spec clientId/clientSecret are used', 'spec.secretName');
  }

  let validUntil: number | undefined;
  const vu = spec['validUntil'];
  if (typeof vu === 'number') validUntil = vu;
  else if (typeof vu === 'string' && vu !== '') {
    const t = /^\d+$/.test(vu) ? Number(vu) : Date.parse(vu);
    if (Number.isNaN(t)) p.error('OXDS_INVALID_FIELD', `validUntil ${JSON.stringify(vu)} is neither epoch ms nor an ISO date`, 'spec.validUntil');
    else validUntil = t;
  }

  // authorizedEntities (+ legacy authorizedGroup): unprefixed = group id; resolved by id, name, ns/name.
  const raw = strArray(spec, 'authorizedEntities').map((v, i) => ({ v, field: `spec.authorizedEntities[${i}]` }));
  const legacy = str(spec, 'authorizedGroup');
  if (legacy !== undefined && legacy !== '') raw.push({ v: `group_${legacy}`, field: 'spec.authorizedGroup' });
  const authorizedEntities: string[] = [];
  for (const { v, field } of raw) {
    const prefix = ENTITY_PREFIXES.find((x) => v.startsWith(x));
    const kind = prefix === undefined || prefix === 'group_' ? 'group' : prefix === 'service_' ? 'service' : 'other';
    const ref = prefix === undefined ? v : v.slice(prefix.length);
    let out: string;
    if (kind === 'other') out = v; // routes of Otoroshi's new engine: kept as written
    else {
      const resolved = kind === 'group' ? refs.group(ref, ns) : refs.descriptor(ref, ns);
      if (resolved === undefined) {
        p.warn('OXDS_UNRESOLVED_REFERENCE', `${kind} ${JSON.stringify(ref)} not found (by otoroshi.io/id, name in ${ns}, or ns/name); kept as ${kind}_${ref}`, field);
      }
      out = `${kind}_${resolved ?? ref}`;
    }
    if (!authorizedEntities.includes(out)) authorizedEntities.push(out);
  }

  const quota = (k: string): number => num(spec, k) ?? DEFAULT_QUOTA;
  const key: ApiKey = {
    clientId,
    clientSecret,
    clientName: str(spec, 'clientName') ?? name,
    sourceKey: so.key,
    namespace: ns,
    enabled: bool(spec, 'enabled', true),
    readOnly: bool(spec, 'readOnly', false),
    allowClientIdOnly: bool(spec, 'allowClientIdOnly', false),
    throttlingQuota: quota('throttlingQuota'),
    dailyQuota: quota('dailyQuota'),
    monthlyQuota: quota('monthlyQuota'),
    authorizedEntities,
    tags: strArray(spec, 'tags'),
    metadata: strMap(spec, 'metadata'),
    spec: untranslated(spec, TRANSLATED),
  };
  if (validUntil !== undefined) key.validUntil = validUntil;
  return p.hasErrors ? undefined : key;
}
