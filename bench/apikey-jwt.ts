// The apikey-JWT Check (an HS256 JWT signed with the key's clientSecret, in Otoroshi-Token) with
// our verifier (node:crypto HMAC, src/authz/jwt.ts) and with the same checks written on jose
// (jwtVerify with cached HMAC CryptoKeys), against the same Check with the key in
// Otoroshi-Client-Id / -Secret headers (the floor: everything but the JWT), alternated in one
// process: Authorizer.check on the authz test fixture, a quota store that always allows.
// Prints the median µs per Check of each (docs/hand-written.md cites it).
//   node dist/bench/apikey-jwt.js [checks=20000] [rounds=5]
import fs from 'node:fs';
import path from 'node:path';
import { createHmac, webcrypto } from 'node:crypto';
import * as jose from 'jose';
import { fileURLToPath } from 'node:url';
import { parseYamlFile } from '../src/sources/yaml.js';
import { buildModel } from '../src/model/build.js';
import { buildPolicy } from '../src/authz/policy.js';
import { Authorizer } from '../src/authz/decide.js';
import type { CheckInput, QuotaStore } from '../src/authz/types.js';
import type { ApikeyJwtOptions, ApikeyJwtResult } from '../src/authz/apikey.js';

/** HMAC keys of apikey secrets, per algorithm (importing a key costs more than verifying with it). */
const APIKEY_HMAC_KEYS = new Map<string, Promise<webcrypto.CryptoKey>>();
const APIKEY_HMAC_KEYS_MAX = 4096;

function apikeyHmacKey(secret: string, alg: string): Promise<webcrypto.CryptoKey> {
  const cacheKey = `${alg}\u0000${secret}`;
  let key = APIKEY_HMAC_KEYS.get(cacheKey);
  if (key === undefined) {
    if (APIKEY_HMAC_KEYS.size >= APIKEY_HMAC_KEYS_MAX) APIKEY_HMAC_KEYS.clear();
    const hash = `SHA-${alg.slice(2)}`;
    key = webcrypto.subtle.importKey('raw', Buffer.from(secret, 'utf8'), { name: 'HMAC', hash }, false, ['verify']);
    APIKEY_HMAC_KEYS.set(cacheKey, key);
  }
  return key;
}

class CritRefused extends Error {}

/** The reason an apikey JWT was refused, from jose's error. */
function apikeyJwtReason(e: unknown, token: string): string {
  if (e instanceof CritRefused) return 'unsupported crit header';
  if (e instanceof jose.errors.JWTExpired) return 'token expired';
  if (e instanceof jose.errors.JWTClaimValidationFailed) {
    if (e.reason === 'invalid' && ['exp', 'nbf', 'iat'].includes(e.claim)) return 'exp/nbf/iat must be numbers';
    if (e.claim === 'nbf') return 'token not yet valid (nbf)';
    return e.message;
  }
  if (e instanceof jose.errors.JWSSignatureVerificationFailed) return 'bad signature';
  if (e instanceof jose.errors.JOSEAlgNotAllowed)
    return `algorithm ${String(jose.decodeProtectedHeader(token).alg)} not allowed`;
  return 'malformed token';
}

/**
 * Verifies an apikey JWT HS-signed with the key's clientSecret (jose: signature, alg in
 * `allowedAlgs`, exp / nbf with the leeway), plus what jose does not check: no `crit` header, iat
 * not in the future, maxJwtLifespanSecs (exp and iat then required, exp - iat <= max) and the
 * `xsrfToken` claim equal to `xsrfHeader` (the X-XSRF-TOKEN value). Never throws.
 */
async function joseApikeyJwt(token: string, secret: string, opts: ApikeyJwtOptions): Promise<ApikeyJwtResult> {
  if (secret === '') return { ok: false, reason: 'empty secret' };
  let claims: Record<string, unknown>;
  try {
    const r = await jose.jwtVerify(
      token,
      (header) => {
        if (header.crit !== undefined) throw new CritRefused();
        return apikeyHmacKey(secret, header.alg);
      },
      { algorithms: [...opts.allowedAlgs], clockTolerance: opts.leewaySec, currentDate: new Date(opts.nowMs) },
    );
    claims = r.payload;
  } catch (e) {
    return { ok: false, reason: apikeyJwtReason(e, token) };
  }
  const now = opts.nowMs / 1000;
  const exp = claims['exp'] as number | undefined;
  const iat = claims['iat'] as number | undefined; // numbers when present (checked by jose)
  if (iat !== undefined && now < iat - opts.leewaySec) return { ok: false, reason: 'token issued in the future (iat)' };
  if (opts.maxJwtLifespanSecs !== undefined) {
    if (exp === undefined || iat === undefined)
      return { ok: false, reason: 'exp and iat are required (maxJwtLifespanSecs)' };
    if (exp - iat > opts.maxJwtLifespanSecs)
      return { ok: false, reason: `token lifespan ${exp - iat}s exceeds ${opts.maxJwtLifespanSecs}s` };
  }
  const xsrf = claims['xsrfToken'];
  if (xsrf !== undefined) {
    if (opts.xsrfHeader === undefined || typeof xsrf !== 'string' || xsrf !== opts.xsrfHeader)
      return { ok: false, reason: 'xsrfToken does not match X-XSRF-TOKEN' };
  }
  return { ok: true, claims };
}

const N = Number(process.argv[2] ?? '20000');
const ROUNDS = Number(process.argv[3] ?? '5');
const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const yaml = fs.readFileSync(path.join(root, 'test', 'fixtures', 'authz', 'base.yaml'), 'utf8');
const parsed = parseYamlFile('base.yaml', yaml, 0);
const model = buildModel({ objects: parsed.objects, loadErrors: parsed.errors }).model;

const always = { allowed: true, dailyRemaining: 1e9, monthlyRemaining: 1e9, windowCalls: 0, degraded: false };
const quota: QuotaStore = {
  consume: () => Promise.resolve(always),
  peek: () => Promise.resolve(always),
  close: () => Promise.resolve(),
};
const policy = buildPolicy(model);
const ours = new Authorizer({ quota });
ours.setPolicy(policy);
const withJose = new Authorizer({ quota, apikeyJwt: joseApikeyJwt });
withJose.setPolicy(policy);

function hs256(claims: Record<string, unknown>, secret: string): string {
  const enc = (o: unknown): string => Buffer.from(JSON.stringify(o)).toString('base64url');
  const head = `${enc({ alg: 'HS256', typ: 'JWT' })}.${enc(claims)}`;
  return `${head}.${createHmac('sha256', secret).update(head).digest('base64url')}`;
}
const nowSec = Math.floor(Date.now() / 1000);
const token = hs256({ clientId: 'key1', iat: nowSec, exp: nowSec + 3600 }, 'secret1');
const input = (headers: Record<string, string>): CheckInput => ({
  method: 'GET',
  host: 'api.example.com',
  path: '/x',
  query: '',
  headers,
  contextExtensions: {},
});
const jwtInput = input({ 'otoroshi-token': token });
const floorInput = input({ 'otoroshi-client-id': 'key1', 'otoroshi-client-secret': 'secret1' });

async function run(az: Authorizer, inp: CheckInput): Promise<number> {
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < N; i++) {
    const d = await az.check(inp);
    if (!d.allow) throw new Error(`denied: ${JSON.stringify(d)}`);
  }
  return Number(process.hrtime.bigint() - t0) / 1000 / N;
}

const cases: [string, Authorizer, CheckInput][] = [
  ['apikey-JWT Check, ours', ours, jwtInput],
  ['apikey-JWT Check, jose', withJose, jwtInput],
  ['floor (client id/secret headers)', ours, floorInput],
];
for (const [, az, inp] of cases) await run(az, inp);
const times = cases.map((): number[] => []);
for (let r = 0; r < ROUNDS; r++) for (const [i, [, az, inp]] of cases.entries()) times[i]?.push(await run(az, inp));
const med = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? NaN;
for (const [i, [name]] of cases.entries()) {
  const xs = times[i] ?? [];
  console.log(`${name}: ${med(xs).toFixed(1)} µs median (rounds ${xs.map((x) => x.toFixed(1)).join(' ')})`);
}
