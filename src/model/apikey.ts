// ApiKey CR → ApiKey (otoroshi-model.md §7.1, §7.5).
import type { ApiKey, ApiKeyRotation, StoredObject } from './types.js';
import { derivedToken, namespaceOf } from './ids.js';
import { asObject, bool, isObject, num, str, strArray, strMap, type Problems } from './problems.js';
import { restrictionsFrom, untranslated, type ModelSettings, type RefResolver } from './descriptor.js';

export const DEFAULT_QUOTA = 10000000;

const TRANSLATED = new Set([
  'clientId', 'clientSecret', 'clientName', 'enabled', 'readOnly', 'allowClientIdOnly', 'throttlingQuota',
  'dailyQuota', 'monthlyQuota', 'validUntil', 'tags', 'metadata', 'authorizedEntities', 'authorizedGroup',
  'restrictions', 'rotation',
]);
// NOTE: `constrainedServicesOnly` has no field in ApiKey (types.ts): it stays in `spec` and the
// policy reads `spec.constrainedServicesOnly === true`.

/** §7.1 rotation defaults: 744 h (31 days) period, 168 h (7 days) grace. */
export const DEFAULT_ROTATION: Readonly<ApiKeyRotation> = { enabled: false, rotationEvery: 744, gracePeriod: 168 };

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
  if (spec['restrictions'] !== undefined && spec['restrictions'] !== null) key.restrictions = restrictionsFrom(spec['restrictions'], 'spec.restrictions', p);
  const rot = spec['rotation'];
  if (isObject(rot)) {
    // Otoroshi keeps the rotation start in its datastore and generates nextSecret itself. We are
    // stateless (Kubernetes is the source of truth): the user writes `nextSecret` for the grace
    // period, then moves it to `clientSecret`. While `enabled` and `nextSecret` is set, both secrets
    // are accepted (Otoroshi's `isValid`: `rotation.enabled && secret == nextSecret`).
    const r: ApiKeyRotation = {
      enabled: bool(rot, 'enabled', DEFAULT_ROTATION.enabled),
      rotationEvery: num(rot, 'rotationEvery') ?? DEFAULT_ROTATION.rotationEvery,
      gracePeriod: num(rot, 'gracePeriod') ?? DEFAULT_ROTATION.gracePeriod,
    };
    const next = str(rot, 'nextSecret');
    if (next !== undefined && next !== '') r.nextSecret = next;
    if (r.enabled && r.nextSecret === undefined) {
      p.warn('OXDS_MISSING_FIELD', 'rotation is enabled but has no nextSecret: only clientSecret is accepted (secrets are not generated here: write nextSecret for the grace period)', 'spec.rotation.nextSecret');
    }
    key.rotation = r;
  }
  return p.hasErrors ? undefined : key;
}
