// JwtVerifier CRD / inline `local` verifier → JwtVerifierModel . Pure: no I/O.
//
// Leniency rules (where Otoroshi's reader would reject the whole entity):
//  * `source.remove` missing → "" with a warning;
//  * `strategy.verificationSettings` (or its `fields` / `arrayFields`) missing → {} with a warning;
//  * `transformSettings.mappingSettings` missing → empty mapping with a warning.
// Everything else Otoroshi requires is an error (the verifier is not produced).
// Keys are parsed here (node:crypto, in memory) so a bad PEM is a config error naming the field, not a
// runtime 400; publicKey/privateKey are normalised to SPKI / PKCS#8 PEM in the model.
import { createPrivateKey, createPublicKey, type KeyObject } from 'node:crypto';
import { linearRegexProblem } from './linear-regex.js';
import type {
  ConfigError,
  JwtAlgoSettings,
  JwtStrategy,
  JwtTokenSource,
  JwtVerificationSettings,
  JwtVerifierModel,
  StoredObject,
} from './types.js';
import { crdEntityId, nameOfKey, namespaceOf } from './ids.js';
import { Problems, asObject, isObject, str, strArray, strMap, errorMessage, type JsonObject } from './problems.js';

type Size = 256 | 384 | 512;

/** EC curve (node's name) required by each ES size: ES512 is P-521. */
export const EC_CURVE_BY_SIZE: Readonly<Record<Size, string>> = {
  256: 'prime256v1',
  384: 'secp384r1',
  512: 'secp521r1',
};

// ------------------------------------------------------------------ key helpers (shared with authz/jwt.ts)

function isPem(v: string): boolean {
  return v.includes('-----BEGIN');
}

/** A key as given: PEM text, else the bytes of bare base64 DER. Throws when empty. */
function keyInput(value: string): string | Buffer {
  const v = value.trim();
  if (isPem(v)) return v;
  const der = Buffer.from(v.replace(/\s+/g, ''), 'base64');
  if (der.length === 0) throw new Error('empty key');
  return der;
}

/** Parses a public key given as PEM (SPKI, PKCS#1 RSA, or a certificate) or as bare base64 SPKI DER. Throws. */
export function parsePublicKey(value: string): KeyObject {
  const k = keyInput(value);
  return typeof k === 'string' ? createPublicKey(k) : createPublicKey({ key: k, format: 'der', type: 'spki' });
}

/** Parses a private key given as PEM (PKCS#8, PKCS#1, SEC1) or as bare base64 PKCS#8 DER. Throws. */
export function parsePrivateKey(value: string): KeyObject {
  const k = keyInput(value);
  return typeof k === 'string' ? createPrivateKey(k) : createPrivateKey({ key: k, format: 'der', type: 'pkcs8' });
}

/** SPKI PEM of a public key in any accepted form (what jose.importSPKI wants). Throws. */
export function toSpkiPem(value: string): string {
  return parsePublicKey(value).export({ type: 'spki', format: 'pem' }).toString();
}

/** PKCS#8 PEM of a private key in any accepted form (what jose.importPKCS8 wants). Throws. */
export function toPkcs8Pem(value: string): string {
  return parsePrivateKey(value).export({ type: 'pkcs8', format: 'pem' }).toString();
}

/** Why `key` cannot serve `type`/`size`, or undefined when it can. */
function keyMismatch(key: KeyObject, type: 'RSAlgoSettings' | 'ESAlgoSettings', size: Size): string | undefined {
  if (type === 'RSAlgoSettings') {
    if (key.asymmetricKeyType !== 'rsa') return `expected an RSA key, got ${key.asymmetricKeyType ?? 'unknown'}`;
    const bits = key.asymmetricKeyDetails?.modulusLength;
    if (bits !== undefined && bits < 2048) return `RSA key of ${bits} bits: at least 2048 are required`;
    return undefined;
  }
  if (key.asymmetricKeyType !== 'ec') return `expected an EC key, got ${key.asymmetricKeyType ?? 'unknown'}`;
  const curve = key.asymmetricKeyDetails?.namedCurve;
  const want = EC_CURVE_BY_SIZE[size];
  if (curve !== want) return `ES${size} needs curve ${want}, the key is on ${curve ?? 'an unknown curve'}`;
  return undefined;
}

// ------------------------------------------------------------------ readers

/** `${env.X}` / `${config.x}` values (Otoroshi evaluates them; we do not). */
const EXPRESSION = /\$\{[^}]*\}/;

/** A required object field: an error (missing, or not an object) when it is not one. */
function requiredObject(v: unknown, field: string, p: Problems, missing: string): v is JsonObject {
  if (v === undefined || v === null) {
    p.error('OXDS_MISSING_FIELD', missing, field);
    return false;
  }
  if (!isObject(v)) {
    p.error('OXDS_INVALID_FIELD', 'must be an object', field);
    return false;
  }
  return true;
}

function readSource(v: unknown, field: string, p: Problems): JwtTokenSource | undefined {
  if (!requiredObject(v, field, p, 'a token location is required (type InHeader, InQueryParam or InCookie)'))
    return undefined;
  const type = str(v, 'type');
  const name = str(v, 'name');
  if (type === undefined) {
    p.error('OXDS_MISSING_FIELD', 'type is required (InHeader, InQueryParam or InCookie)', `${field}.type`);
    return undefined;
  }
  if (type !== 'InHeader' && type !== 'InQueryParam' && type !== 'InCookie') {
    p.error(
      'OXDS_INVALID_FIELD',
      `unknown token location type ${JSON.stringify(type)} (InHeader, InQueryParam or InCookie)`,
      `${field}.type`,
    );
    return undefined;
  }
  if (name === undefined || name.trim() === '') {
    p.error('OXDS_MISSING_FIELD', `name is required for ${type}`, `${field}.name`);
    return undefined;
  }
  if (type === 'InQueryParam') return { type, name };
  if (type === 'InCookie') return { type, name };
  if (!/^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/.test(name)) {
    p.error('OXDS_INVALID_FIELD', `${JSON.stringify(name)} is not a valid header name`, `${field}.name`);
    return undefined;
  }
  let remove = str(v, 'remove');
  if (remove === undefined) {
    p.warn('OXDS_MISSING_FIELD', 'remove is required by Otoroshi; "" assumed', `${field}.remove`);
    remove = '';
  }
  if (remove !== '') {
    const reason = linearRegexProblem(remove);
    if (reason !== null) {
      p.error('OXDS_INVALID_FIELD', `remove is applied as a regex and does not compile: ${reason}`, `${field}.remove`);
      return undefined;
    }
  }
  return { type, name, remove };
}

function readSize(o: JsonObject, field: string, p: Problems): Size | undefined {
  const v = o['size'];
  if (v === undefined) {
    p.error('OXDS_MISSING_FIELD', 'size is required (256, 384 or 512)', `${field}.size`);
    return undefined;
  }
  const n = typeof v === 'string' && /^\d+$/.test(v) ? Number(v) : v;
  if (n !== 256 && n !== 384 && n !== 512) {
    p.error('OXDS_INVALID_FIELD', `size must be 256, 384 or 512 (got ${JSON.stringify(v)})`, `${field}.size`);
    return undefined;
  }
  return n;
}

function readPositive(o: JsonObject, k: string, def: number, field: string, p: Problems): number {
  const v = o[k];
  if (v === undefined || v === null) return def;
  const n = typeof v === 'string' && /^\d+$/.test(v) ? Number(v) : v;
  if (typeof n !== 'number' || !Number.isFinite(n) || n <= 0) {
    p.error('OXDS_INVALID_FIELD', `${k} must be a positive number of milliseconds`, `${field}.${k}`);
    return def;
  }
  return n;
}

/**
 * `usage`: 'input' = verifies incoming tokens (JWKS allowed, private key optional);
 * 'output' = signs (Sign / Transform): needs an HS secret or a private key, no JWKS.
 */
type AlgoOf<T extends JwtAlgoSettings['type']> = Extract<JwtAlgoSettings, { type: T }>;

function hsAlgoSettings(
  v: JsonObject,
  field: string,
  p: Problems,
  before: number,
): AlgoOf<'HSAlgoSettings'> | undefined {
  const type = 'HSAlgoSettings';
  const size = readSize(v, field, p);
  const secret = str(v, 'secret');
  const b64 = v['base64'];
  if (b64 !== undefined && typeof b64 !== 'boolean')
    p.error('OXDS_INVALID_FIELD', 'base64 must be a boolean', `${field}.base64`);
  const base64 = b64 === true;
  if (secret === undefined || secret === '') {
    p.error('OXDS_MISSING_FIELD', 'secret is required for HSAlgoSettings', `${field}.secret`);
  } else if (EXPRESSION.test(secret)) {
    p.error(
      'OXDS_INVALID_FIELD',
      'expressions such as ${env.X} / ${config.x} are not evaluated: put the secret itself in the spec (the ' +
        'literal would be a guessable key)',
      `${field}.secret`,
    );
  } else if (base64 && (!/^[A-Za-z0-9+/_\-=\s]+$/.test(secret) || Buffer.from(secret, 'base64').length === 0)) {
    p.error('OXDS_INVALID_FIELD', 'base64 is true but secret is not valid base64', `${field}.secret`);
  }
  if (p.errorCount > before || size === undefined || secret === undefined) return undefined;
  return { type, size, secret, base64 };
}

/** publicKey of RS / ES settings: required, a PEM or base64 SPKI matching the type and size. */
function publicKeyOf(
  v: JsonObject,
  type: 'RSAlgoSettings' | 'ESAlgoSettings',
  size: 256 | 384 | 512 | undefined,
  field: string,
  p: Problems,
): { publicKey: string | undefined; pubKey: KeyObject | undefined } {
  const pub = str(v, 'publicKey');
  let publicKey: string | undefined;
  let pubKey: KeyObject | undefined;
  if (pub === undefined || pub.trim() === '') {
    p.error('OXDS_MISSING_FIELD', `publicKey (PEM or base64 SPKI) is required for ${type}`, `${field}.publicKey`);
  } else if (EXPRESSION.test(pub)) {
    p.error(
      'OXDS_INVALID_FIELD',
      'expressions such as ${env.X} are not evaluated: put the PEM in the spec',
      `${field}.publicKey`,
    );
  } else {
    try {
      pubKey = parsePublicKey(pub);
      publicKey = pubKey.export({ type: 'spki', format: 'pem' }).toString();
    } catch (e) {
      p.error(
        'OXDS_INVALID_FIELD',
        `publicKey is not a valid PEM / base64 SPKI public key: ${errorMessage(e)}`,
        `${field}.publicKey`,
      );
    }
    if (pubKey !== undefined && size !== undefined) {
      const why = keyMismatch(pubKey, type, size);
      if (why !== undefined) p.error('OXDS_INVALID_FIELD', `publicKey: ${why}`, `${field}.publicKey`);
    }
  }
  return { publicKey, pubKey };
}

/** privateKey of RS / ES settings (optional): PKCS#8 matching the type and size; a warning if not publicKey's pair. */
function privateKeyOf(
  v: JsonObject,
  type: 'RSAlgoSettings' | 'ESAlgoSettings',
  size: 256 | 384 | 512 | undefined,
  pubKey: KeyObject | undefined,
  field: string,
  p: Problems,
): string | undefined {
  const priv = str(v, 'privateKey');
  let privateKey: string | undefined;
  if (priv !== undefined && priv.trim() !== '') {
    if (EXPRESSION.test(priv)) {
      p.error(
        'OXDS_INVALID_FIELD',
        'expressions such as ${env.X} are not evaluated: put the PEM in the spec',
        `${field}.privateKey`,
      );
    } else {
      try {
        const k = parsePrivateKey(priv);
        privateKey = k.export({ type: 'pkcs8', format: 'pem' }).toString();
        if (size !== undefined) {
          const why = keyMismatch(k, type, size);
          if (why !== undefined) p.error('OXDS_INVALID_FIELD', `privateKey: ${why}`, `${field}.privateKey`);
        }
        if (pubKey !== undefined) {
          const derived = createPublicKey(k).export({ type: 'spki', format: 'der' });
          if (!derived.equals(pubKey.export({ type: 'spki', format: 'der' }))) {
            p.warn(
              'OXDS_INVALID_FIELD',
              'privateKey does not match publicKey: tokens it signs will not verify with publicKey',
              `${field}.privateKey`,
            );
          }
        }
      } catch (e) {
        p.error(
          'OXDS_INVALID_FIELD',
          `privateKey is not a valid PEM / base64 PKCS#8 private key: ${errorMessage(e)}`,
          `${field}.privateKey`,
        );
      }
    }
  }
  return privateKey;
}

function asymAlgoSettings(
  v: JsonObject,
  type: 'RSAlgoSettings' | 'ESAlgoSettings',
  field: string,
  usage: 'input' | 'output',
  p: Problems,
  before: number,
): AlgoOf<'RSAlgoSettings' | 'ESAlgoSettings'> | undefined {
  const size = readSize(v, field, p);
  const { publicKey, pubKey } = publicKeyOf(v, type, size, field, p);
  const privateKey = privateKeyOf(v, type, size, pubKey, field, p);
  if (usage === 'output' && privateKey === undefined && p.errorCount === before) {
    p.error('OXDS_MISSING_FIELD', `signing with ${type} needs a privateKey`, `${field}.privateKey`);
  }
  if (p.errorCount > before || size === undefined || publicKey === undefined) return undefined;
  return privateKey === undefined ? { type, size, publicKey } : { type, size, publicKey, privateKey };
}

function jwksAlgoSettings(
  v: JsonObject,
  field: string,
  usage: 'input' | 'output',
  p: Problems,
  before: number,
): AlgoOf<'JWKSAlgoSettings'> | undefined {
  const type = 'JWKSAlgoSettings';
  if (usage === 'output') {
    p.error(
      'OXDS_INVALID_FIELD',
      'JWKSAlgoSettings cannot sign: use HS, RS or ES settings (with a private key) to sign',
      `${field}.type`,
    );
    return undefined;
  }
  const url = str(v, 'url');
  if (url === undefined || url === '') {
    p.error('OXDS_MISSING_FIELD', 'url is required for JWKSAlgoSettings', `${field}.url`);
  } else {
    let ok = false;
    try {
      const u = new URL(url);
      ok = u.protocol === 'http:' || u.protocol === 'https:';
    } catch {
      ok = false;
    }
    if (!ok) p.error('OXDS_INVALID_FIELD', `url ${JSON.stringify(url)} is not an http(s) URL`, `${field}.url`);
  }
  const headers = strMap(v, 'headers');
  const timeout = readPositive(v, 'timeout', 2000, field, p);
  const ttl = readPositive(v, 'ttl', 3600000, field, p);
  const ktyRaw = str(v, 'kty') ?? 'RSA';
  let kty: 'RSA' | 'EC' = 'RSA';
  if (ktyRaw === 'RSA' || ktyRaw === 'EC') kty = ktyRaw;
  else p.error('OXDS_INVALID_FIELD', `kty must be RSA or EC (got ${JSON.stringify(ktyRaw)})`, `${field}.kty`);
  if (v['proxy'] !== undefined && v['proxy'] !== null)
    p.warn('OXDS_INVALID_FIELD', 'proxy is not supported: the JWKS is fetched directly', `${field}.proxy`);
  if (v['mtlsConfig'] !== undefined && v['mtlsConfig'] !== null)
    p.warn(
      'OXDS_INVALID_FIELD',
      'mtlsConfig is not supported: the JWKS is fetched without a client certificate',
      `${field}.mtlsConfig`,
    );
  if (p.errorCount > before || url === undefined) return undefined;
  return { type, url, headers, timeout, ttl, kty };
}

function readAlgoSettings(
  v: unknown,
  field: string,
  usage: 'input' | 'output',
  p: Problems,
): JwtAlgoSettings | undefined {
  if (!requiredObject(v, field, p, 'algoSettings is required')) return undefined;
  const type = str(v, 'type');
  if (type === undefined) {
    p.error(
      'OXDS_MISSING_FIELD',
      'type is required (HSAlgoSettings, RSAlgoSettings, ESAlgoSettings or JWKSAlgoSettings)',
      `${field}.type`,
    );
    return undefined;
  }
  const before = p.errorCount;
  switch (type) {
    case 'HSAlgoSettings':
      return hsAlgoSettings(v, field, p, before);
    case 'RSAlgoSettings':
    case 'ESAlgoSettings':
      return asymAlgoSettings(v, type, field, usage, p, before);
    case 'JWKSAlgoSettings':
      return jwksAlgoSettings(v, field, usage, p, before);
    case 'RSAKPAlgoSettings':
    case 'ESKPAlgoSettings':
    case 'KidAlgoSettings':
      p.error(
        'OXDS_INVALID_FIELD',
        `${type} (keys of Otoroshi certificates) is not supported yet: use RSAlgoSettings / ESAlgoSettings with ` +
          `the PEM, or JWKSAlgoSettings`,
        `${field}.type`,
      );
      return undefined;
    default:
      p.error('OXDS_INVALID_FIELD', `unknown algoSettings type ${JSON.stringify(type)}`, `${field}.type`);
      return undefined;
  }
}

function readVerificationSettings(v: unknown, field: string, p: Problems): JwtVerificationSettings {
  if (v === undefined || v === null) {
    p.warn(
      'OXDS_MISSING_FIELD',
      'verificationSettings is required by Otoroshi; {fields: {}, arrayFields: {}} assumed',
      field,
    );
    return { fields: {}, arrayFields: {} };
  }
  if (!isObject(v)) {
    p.error('OXDS_INVALID_FIELD', 'must be an object', field);
    return { fields: {}, arrayFields: {} };
  }
  for (const k of ['fields', 'arrayFields'] as const) {
    const x = v[k];
    if (x === undefined || x === null)
      p.warn('OXDS_MISSING_FIELD', `${k} is required by Otoroshi; {} assumed`, `${field}.${k}`);
    else if (!isObject(x)) p.error('OXDS_INVALID_FIELD', `${k} must be an object of claim → string`, `${field}.${k}`);
    else {
      for (const [ck, cv] of Object.entries(x)) {
        if (typeof cv !== 'string' && typeof cv !== 'number' && typeof cv !== 'boolean') {
          p.error('OXDS_INVALID_FIELD', `${k}.${ck} must be a string`, `${field}.${k}.${ck}`);
        }
      }
    }
  }
  return { fields: strMap(v, 'fields'), arrayFields: strMap(v, 'arrayFields') };
}

/** `${...}` expressions the engine evaluates in Transform (see authz/jwt.ts). */
const SUPPORTED_EXPR =
  /^(token|ctx)\.[^|:]+?(\|(token|ctx)\.[^|:]+?)?(:.*)?$|^(token|ctx)\.[^.]+\.replace(All)?\(.*\)$/;

function checkExpressions(value: unknown, field: string, p: Problems): void {
  if (typeof value === 'string') {
    for (const m of value.matchAll(/\$\{([^}]*)\}/g)) {
      const expr = m[1] ?? '';
      if (!SUPPORTED_EXPR.test(expr)) {
        p.warn(
          'OXDS_INVALID_FIELD',
          `expression \${${expr}} is not supported (only \${token.<claim>} forms): it evaluates to "bad-expr"`,
          field,
        );
      }
    }
  } else if (Array.isArray(value)) value.forEach((x, i) => checkExpressions(x, `${field}[${i}]`, p));
  else if (isObject(value)) for (const [k, x] of Object.entries(value)) checkExpressions(x, `${field}.${k}`, p);
}

function readStrategy(v: unknown, field: string, p: Problems): JwtStrategy | undefined {
  if (!requiredObject(v, field, p, 'strategy is required (PassThrough, Sign or Transform)')) return undefined;
  const type = str(v, 'type');
  if (type === undefined) {
    p.error('OXDS_MISSING_FIELD', 'type is required (PassThrough, Sign or Transform)', `${field}.type`);
    return undefined;
  }
  const before = p.errorCount;
  if (type === 'DefaultToken') {
    p.error('OXDS_INVALID_FIELD', 'the DefaultToken strategy is not supported yet', `${field}.type`);
    return undefined;
  }
  if (type !== 'PassThrough' && type !== 'Sign' && type !== 'Transform') {
    p.error(
      'OXDS_INVALID_FIELD',
      `unknown strategy type ${JSON.stringify(type)} (PassThrough, Sign or Transform)`,
      `${field}.type`,
    );
    return undefined;
  }
  const verificationSettings = readVerificationSettings(v['verificationSettings'], `${field}.verificationSettings`, p);
  if (type === 'PassThrough') return p.errorCount > before ? undefined : { type, verificationSettings };
  const algoSettings = readAlgoSettings(v['algoSettings'], `${field}.algoSettings`, 'output', p);
  if (type === 'Sign')
    return p.errorCount > before || algoSettings === undefined
      ? undefined
      : { type, verificationSettings, algoSettings };

  const tsField = `${field}.transformSettings`;
  const ts = v['transformSettings'];
  if (!isObject(ts)) {
    p.error(
      ts === undefined || ts === null ? 'OXDS_MISSING_FIELD' : 'OXDS_INVALID_FIELD',
      'transformSettings {location, mappingSettings} is required for Transform',
      tsField,
    );
    return undefined;
  }
  const location = readSource(ts['location'], `${tsField}.location`, p);
  const msRaw = ts['mappingSettings'];
  const msField = `${tsField}.mappingSettings`;
  if (msRaw === undefined || msRaw === null)
    p.warn('OXDS_MISSING_FIELD', 'mappingSettings is required by Otoroshi; an empty mapping is assumed', msField);
  else if (!isObject(msRaw)) p.error('OXDS_INVALID_FIELD', 'must be an object {map, values, remove}', msField);
  const ms = asObject(msRaw);
  if (ms['map'] !== undefined && !isObject(ms['map']))
    p.error('OXDS_INVALID_FIELD', 'map must be an object of old claim → new claim', `${msField}.map`);
  if (ms['values'] !== undefined && !isObject(ms['values']))
    p.error('OXDS_INVALID_FIELD', 'values must be an object', `${msField}.values`);
  if (ms['remove'] !== undefined && !Array.isArray(ms['remove']))
    p.error('OXDS_INVALID_FIELD', 'remove must be an array of claim names', `${msField}.remove`);
  const map = strMap(ms, 'map');
  const values = isObject(ms['values']) ? (structuredClone(ms['values']) as Record<string, unknown>) : {};
  const remove = strArray(ms, 'remove');
  checkExpressions(map, `${msField}.map`, p);
  checkExpressions(values, `${msField}.values`, p);
  if (p.errorCount > before || algoSettings === undefined || location === undefined) return undefined;
  return {
    type,
    verificationSettings,
    algoSettings,
    transformSettings: { location, mappingSettings: { map, values, remove } },
  };
}

/** Parses the verifier body shared by the CRD spec and the inline `local` verifier. */
function readBody(
  spec: JsonObject,
  prefix: string,
  p: Problems,
): Pick<JwtVerifierModel, 'strict' | 'source' | 'algoSettings' | 'strategy'> | undefined {
  const s = spec['strict'];
  if (s !== undefined && typeof s !== 'boolean')
    p.warn('OXDS_INVALID_FIELD', 'strict must be a boolean; false assumed', `${prefix}.strict`);
  const strict = s === true;
  const source = readSource(spec['source'], `${prefix}.source`, p);
  const algoSettings = readAlgoSettings(spec['algoSettings'], `${prefix}.algoSettings`, 'input', p);
  const strategy = readStrategy(spec['strategy'], `${prefix}.strategy`, p);
  if (p.hasErrors || source === undefined || algoSettings === undefined || strategy === undefined) return undefined;
  return { strict, source, algoSettings, strategy };
}

// ------------------------------------------------------------------ entry points

/** A `kind: JwtVerifier` CR (Otoroshi's GlobalJwtVerifier). Errors carry `spec.…` field paths. */
export function buildJwtVerifier(obj: StoredObject): { verifier?: JwtVerifierModel; errors: ConfigError[] } {
  const p = Problems.of(obj, 'JwtVerifier');
  const o = obj.object;
  if (o.spec !== undefined && o.spec !== null && !isObject(o.spec)) {
    p.error('OXDS_INVALID_FIELD', 'spec must be an object', 'spec');
    return { errors: p.errors };
  }
  const spec = asObject(o.spec);
  const body = readBody(spec, 'spec', p);
  if (body === undefined) return { errors: p.errors };
  const name = str(spec, 'name') ?? o.metadata.name;
  const verifier: JwtVerifierModel = {
    id: crdEntityId(o),
    name,
    sourceKey: obj.key,
    namespace: namespaceOf(o),
    ...body,
  };
  return { verifier, errors: p.errors };
}

/**
 * A descriptor's inline `jwtVerifier: {type: local, ...}` (id `local:<descriptorId>`). `enabled` and
 * `excludedPatterns` belong to the descriptor's ref and are not read here. Errors name
 * `<fieldPrefix>.algoSettings.secret` etc.
 */
export function localJwtVerifier(
  descriptorId: string,
  namespace: string,
  sourceKey: string,
  spec: unknown,
  fieldPrefix: string,
): { verifier?: JwtVerifierModel; errors: ConfigError[] } {
  // sourceKey is `<kind>/<namespace>/<name>`.
  const parts = sourceKey.split('/');
  const kind = parts.length >= 3 ? (parts[0] ?? 'ServiceDescriptor') : 'ServiceDescriptor';
  const name = parts.length >= 3 ? nameOfKey(sourceKey, namespace) : descriptorId;
  const p = new Problems(kind, namespace, name);
  if (!isObject(spec)) {
    p.error('OXDS_INVALID_FIELD', 'jwtVerifier must be an object', fieldPrefix);
    return { errors: p.errors };
  }
  const body = readBody(spec, fieldPrefix, p);
  if (body === undefined) return { errors: p.errors };
  const verifier: JwtVerifierModel = {
    id: `local:${descriptorId}`,
    name: `local jwt verifier of ${descriptorId}`,
    sourceKey,
    namespace,
    ...body,
  };
  return { verifier, errors: p.errors };
}
