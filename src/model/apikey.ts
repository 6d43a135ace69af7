// ApiKey CR → ApiKey.
import type { ApiKey, ApiKeyRotation, StoredObject } from './types.js';
import { derivedToken, namespaceOf } from './ids.js';
import { asObject, bool, isObject, num, str, strArray, strMap, type JsonObject, type Problems } from './problems.js';
import { restrictionsFrom, untranslated, type ModelSettings, type RefResolver } from './descriptor.js';

export const DEFAULT_QUOTA = 10000000;

/** Type of the Secrets holding an apikey's clientId / clientSecret (read, and written by exportSecret). */
export const APIKEY_SECRET_TYPE = 'otoroshi.io/apikey-secret';

const TRANSLATED = new Set([
  'clientId',
  'clientSecret',
  'clientName',
  'enabled',
  'readOnly',
  'allowClientIdOnly',
  'throttlingQuota',
  'dailyQuota',
  'monthlyQuota',
  'validUntil',
  'tags',
  'metadata',
  'authorizedEntities',
  'authorizedGroup',
  'restrictions',
  'rotation',
  'daikokuToken',
]);
// NOTE: `constrainedServicesOnly` has no field in ApiKey (types.ts): it stays in `spec` and the
// policy reads `spec.constrainedServicesOnly === true`.

/** Otoroshi's rotation defaults: 744 h (31 days) period, 168 h (7 days) grace. */
export const DEFAULT_ROTATION: Readonly<ApiKeyRotation> = { enabled: false, rotationEvery: 744, gracePeriod: 168 };

/** Prefixes Otoroshi uses in authorizedEntities. A string without one is a group id. */
const ENTITY_PREFIXES = ['group_', 'service_', 'route_', 'routecomp_'];

/**
 * clientId / clientSecret when the spec has none: derived (NOT random: buildModel is pure and must
 * give the same key on every rebuild) from sha512(seed, uid, ns, name). See ModelSettings.secretSeed.
 */
export function derivedCredentials(
  seed: string,
  uid: string,
  ns: string,
  name: string,
): { clientId: string; clientSecret: string } {
  return {
    clientId: derivedToken(64, 'clientId', seed, uid, ns, name),
    clientSecret: derivedToken(128, 'clientSecret', seed, uid, ns, name),
  };
}

/** clientId / clientSecret of an existing `otoroshi.io/apikey-secret` Secret, by `<ns>/<name>`. */
export type ApiKeySecrets = ReadonlyMap<string, { clientId?: string; clientSecret?: string }>;

/** The decoded clientId / clientSecret of an apikey Secret (`data` is base64, `stringData` plain). */
export function apiKeySecretValues(secret: JsonObject): { clientId?: string; clientSecret?: string } {
  const data = asObject(secret['data']);
  const plain = asObject(secret['stringData']);
  const read = (k: string): string | undefined => {
    const v = str(plain, k);
    if (v !== undefined) return v;
    const b = str(data, k);
    return b === undefined ? undefined : Buffer.from(b, 'base64').toString('utf8');
  };
  const out: { clientId?: string; clientSecret?: string } = {};
  const id = read('clientId');
  const secret_ = read('clientSecret');
  if (id !== undefined && id !== '') out.clientId = id;
  if (secret_ !== undefined && secret_ !== '') out.clientSecret = secret_;
  return out;
}

/** `spec.secretName` as `<ns>/<name>` (`ns/name`, or a name in the CR's namespace). */
function secretPath(spec: JsonObject, ns: string): string | undefined {
  const v = str(spec, 'secretName')?.trim();
  if (v === undefined || v === '') return undefined;
  const parts = v.split('/').map((x) => x.trim());
  return parts.length === 2 ? `${parts[0] ?? ''}/${parts[1] ?? ''}` : `${ns}/${v}`;
}

/**
 * Credentials read from the Secret `spec.secretName` when it exists (Otoroshi's CRD sync takes
 * clientId and clientSecret from it, over the spec), with a notice naming it.
 */
function credentialsFromSecret(
  spec: JsonObject,
  ns: string,
  secrets: ApiKeySecrets,
  p: Problems,
): { clientId?: string; clientSecret?: string } {
  const path = secretPath(spec, ns);
  const found = path === undefined ? undefined : secrets.get(path);
  if (path === undefined || found === undefined) return {};
  const taken = (['clientId', 'clientSecret'] as const).filter((k) => found[k] !== undefined);
  if (taken.length === 0) {
    p.warn(
      'OXDS_INVALID_FIELD',
      `Secret ${path} (type otoroshi.io/apikey-secret) has no clientId nor clientSecret: not used`,
      'spec.secretName',
    );
    return {};
  }
  for (const k of taken) {
    if (str(spec, k) !== undefined && str(spec, k) !== found[k])
      p.warn(
        'OXDS_INVALID_FIELD',
        `${k} is ignored: the Secret ${path} named by secretName has one, and it wins (as in Otoroshi)`,
        `spec.${k}`,
      );
  }
  p.notice('OXDS_MISSING_FIELD', `${taken.join(' and ')} read from the existing Secret ${path}`, 'spec.secretName');
  return found;
}

/** validUntil: epoch ms (number or digits) or an ISO date. */
function validUntilOf(spec: JsonObject, p: Problems): number | undefined {
  let validUntil: number | undefined;
  const vu = spec['validUntil'];
  if (typeof vu === 'number') validUntil = vu;
  else if (typeof vu === 'string' && vu !== '') {
    const t = /^\d+$/.test(vu) ? Number(vu) : Date.parse(vu);
    if (Number.isNaN(t))
      p.error(
        'OXDS_INVALID_FIELD',
        `validUntil ${JSON.stringify(vu)} is neither epoch ms nor an ISO date`,
        'spec.validUntil',
      );
    else validUntil = t;
  }

  return validUntil;
}

/** authorizedEntities (+ legacy authorizedGroup), references resolved, de-duplicated. */
function authorizedEntitiesOf(spec: JsonObject, ns: string, refs: RefResolver, p: Problems): string[] {
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
    if (kind === 'other')
      out = v; // routes of Otoroshi's new engine: kept as written
    else {
      const resolved = kind === 'group' ? refs.group(ref, ns) : refs.descriptor(ref, ns);
      if (resolved === undefined) {
        p.warn(
          'OXDS_UNRESOLVED_REFERENCE',
          `${kind} ${JSON.stringify(ref)} not found (by otoroshi.io/id, name in ${ns}, or ns/name); kept as ` +
            `${kind}_${ref}`,
          field,
        );
      }
      out = `${kind}_${resolved ?? ref}`;
    }
    if (!authorizedEntities.includes(out)) authorizedEntities.push(out);
  }

  return authorizedEntities;
}

function rotationOf(rot: JsonObject, p: Problems): ApiKeyRotation {
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
    p.warn(
      'OXDS_MISSING_FIELD',
      'rotation is enabled but has no nextSecret: only clientSecret is accepted (secrets are not generated ' +
        'here: write nextSecret for the grace period)',
      'spec.rotation.nextSecret',
    );
  }
  return r;
}

export function buildApiKey(
  so: StoredObject,
  s: ModelSettings,
  refs: RefResolver,
  p: Problems,
  secrets: ApiKeySecrets = new Map(),
): ApiKey | undefined {
  const obj = so.object;
  const spec = asObject(obj.spec);
  const ns = namespaceOf(obj);
  const name = obj.metadata.name;
  const uid =
    typeof obj.metadata.uid === 'string' || typeof obj.metadata.uid === 'number' ? String(obj.metadata.uid) : '';
  // Derived only when the spec or Secret lacks them (three sha512 a key: most keys name both).
  const derived = (): { clientId: string; clientSecret: string } => derivedCredentials(s.secretSeed, uid, ns, name);
  const fromSecret = credentialsFromSecret(spec, ns, secrets, p);
  const clientId = fromSecret.clientId ?? str(spec, 'clientId') ?? derived().clientId;
  let clientSecret = fromSecret.clientSecret ?? str(spec, 'clientSecret');
  if (typeof spec['daikokuToken'] === 'string' && spec['daikokuToken'] !== '') {
    const authorizesNothing =
      strArray(spec, 'authorizedEntities').length === 0 && str(spec, 'authorizedGroup') === undefined;
    p.warn(
      'OXDS_NOT_SUPPORTED',
      `daikokuToken is not supported: in Otoroshi it links this CR to the apikey Daikoku created in Otoroshi's ` +
        `datastore (its secret and authorizedEntities); there is no such datastore here, so this key has only what ` +
        `its spec says${authorizesNothing ? ' (no authorizedEntities: it authorizes nothing)' : ''}. ` +
        'See docs/daikoku.md',
      'spec.daikokuToken',
    );
  }
  if (clientSecret === undefined) {
    clientSecret = derived().clientSecret;
    p.warn(
      'OXDS_MISSING_FIELD',
      `no clientSecret: a deterministic one was derived from the object ` +
        `identity${s.secretSeed === '' ? ' (no secret seed configured: it is guessable, set clientSecret)' : ''}`,
      'spec.clientSecret',
    );
  }

  const validUntil = validUntilOf(spec, p);
  const authorizedEntities = authorizedEntitiesOf(spec, ns, refs, p);
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
  if (spec['restrictions'] !== undefined && spec['restrictions'] !== null)
    key.restrictions = restrictionsFrom(spec['restrictions'], 'spec.restrictions', p);
  const rot = spec['rotation'];
  if (isObject(rot)) {
    key.rotation = rotationOf(rot, p);
  }
  return p.hasErrors ? undefined : key;
}
