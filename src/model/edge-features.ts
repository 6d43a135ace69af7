// Edge features of a ServiceDescriptor: ipFiltering, redirection, cors, gzip,
// healthCheck, canary, api, targets' mtlsConfig; and the fields Envoy cannot express, reported
// as OXDS_NOT_SUPPORTED warnings (never silently dropped).
import { isIP } from 'node:net';
import type {
  CanarySettings,
  CorsSettings,
  Descriptor,
  GzipSettings,
  HealthCheckSettings,
  IpFiltering,
  Redirection,
  RedirectCode,
  Target,
} from './types.js';
import {
  asObject,
  bool,
  isObject,
  num,
  str,
  strArray,
  type JsonObject,
  type ProblemItem,
  type Problems,
} from './problems.js';
import { resolveDescriptorTargets, type KubeIndex } from './targets.js';

// ------------------------------------------------------------------ ip filtering

/** One ipFiltering entry as CIDR ranges, or null when Envoy cannot express it. */
export function ipEntryToCidrs(entry: string): { address: string; prefixLen: number }[] | null {
  const e = entry.trim();
  if (e === '*')
    return [
      { address: '0.0.0.0', prefixLen: 0 },
      { address: '::', prefixLen: 0 },
    ];
  if (e.includes('/')) {
    const [ip, len] = e.split('/');
    const n = Number(len);
    const fam = isIP(ip ?? '');
    if (fam === 0 || !/^\d+$/.test(len ?? '') || n > (fam === 4 ? 32 : 128)) return null;
    return [{ address: ip as string, prefixLen: n }];
  }
  if (isIP(e) !== 0) return [{ address: e, prefixLen: isIP(e) === 4 ? 32 : 128 }];
  // IPv4 wildcard: whole trailing octets only (`10.1.*.*`, `10.1.*`).
  const parts = e.split('.');
  if (parts.length < 1 || parts.length > 4) return null;
  const fixed: string[] = [];
  let wild = false;
  for (const x of parts) {
    if (x === '*') wild = true;
    else if (wild || !/^\d{1,3}$/.test(x) || Number(x) > 255) return null;
    else fixed.push(x);
  }
  if (!wild) return null;
  const address = [...fixed, '0', '0', '0', '0'].slice(0, 4).join('.');
  return [{ address, prefixLen: fixed.length * 8 }];
}

export function ipFilteringFrom(v: unknown, field: string, p: Problems): IpFiltering | undefined {
  if (!isObject(v)) return undefined;
  const out: IpFiltering = { whitelist: [], blacklist: [] };
  for (const list of ['whitelist', 'blacklist'] as const) {
    strArray(v, list).forEach((entry, i) => {
      if (entry.trim() === '') return;
      if (ipEntryToCidrs(entry) === null) {
        p.warn(
          'OXDS_NOT_SUPPORTED',
          `ipFiltering entry ${JSON.stringify(entry)} is neither an IP, a CIDR nor a wildcard on whole trailing ` +
            `IPv4 octets: not supported, ignored`,
          `${field}.${list}[${i}]`,
        );
        return;
      }
      out[list].push(entry.trim());
    });
  }
  return out.whitelist.length + out.blacklist.length > 0 ? out : undefined;
}

// ------------------------------------------------------------------ redirection / cors / gzip / health / api

const REDIRECT_CODES: readonly RedirectCode[] = [301, 302, 303, 307, 308];

export function redirectionFrom(v: unknown, field: string, p: Problems): Redirection | undefined {
  const o = asObject(v);
  if (!bool(o, 'enabled', false)) return undefined;
  const code = num(o, 'code') ?? 303;
  if (!(REDIRECT_CODES as readonly number[]).includes(code)) {
    // Otoroshi ignores a redirection with an invalid code.
    p.warn(
      'OXDS_INVALID_FIELD',
      `redirection code ${code} is not one of 301, 302, 303, 307, 308: redirection ignored (as Otoroshi does)`,
      `${field}.code`,
    );
    return undefined;
  }
  const to = str(o, 'to') ?? 'https://www.otoroshi.io';
  if (to.includes('${'))
    p.warn(
      'OXDS_NOT_SUPPORTED',
      'expressions (${...}) in redirection.to are not supported: the value is sent literally',
      `${field}.to`,
    );
  return { code: code as RedirectCode, to };
}

/** Whether a CORS allowOrigin list admits any origin (`*` or empty). */
export function anyOrigin(allowOrigin: string): boolean {
  const list = allowOrigin.split(',').map((x) => x.trim());
  return list.every((x) => x === '') || list.includes('*');
}

export function corsFrom(v: unknown, field: string, p: Problems): CorsSettings | undefined {
  const o = asObject(v);
  if (!bool(o, 'enabled', false)) return undefined;
  const excludedPatterns = strArray(o, 'excludedPatterns');
  if (excludedPatterns.length > 0)
    p.warn(
      'OXDS_NOT_SUPPORTED',
      'cors.excludedPatterns is not supported: CORS applies to every path of the descriptor',
      `${field}.excludedPatterns`,
    );
  const out: CorsSettings = {
    allowOrigin: str(o, 'allowOrigin') ?? '*',
    exposeHeaders: strArray(o, 'exposeHeaders'),
    allowHeaders: strArray(o, 'allowHeaders'),
    allowMethods: strArray(o, 'allowMethods'),
    excludedPatterns,
    allowCredentials: bool(o, 'allowCredentials', true),
  };
  const maxAge = num(o, 'maxAge');
  if (maxAge !== undefined) out.maxAge = maxAge;
  if (out.allowCredentials && anyOrigin(out.allowOrigin)) {
    // Browsers refuse credentials with `*`; Envoy would echo every Origin with credentials allowed.
    out.allowCredentials = false;
    p.warn(
      'OXDS_NOT_SUPPORTED',
      'allowCredentials with allowOrigin "*" would let every site send credentialed requests: credentials are not ' +
        'allowed (list the origins to allow them)',
      `${field}.allowCredentials`,
    );
  }
  return out;
}

export function gzipFrom(v: unknown, field: string, p: Problems): GzipSettings | undefined {
  const o = asObject(v);
  if (!bool(o, 'enabled', false)) return undefined;
  const out: GzipSettings = {
    excludedPatterns: strArray(o, 'excludedPatterns'),
    whiteList: strArray(o, 'whiteList'),
    blackList: strArray(o, 'blackList'),
    bufferSize: num(o, 'bufferSize') ?? 8192,
    chunkedThreshold: num(o, 'chunkedThreshold') ?? 102400,
    compressionLevel: Math.min(9, Math.max(1, num(o, 'compressionLevel') ?? 5)),
  };
  if (out.excludedPatterns.length > 0)
    p.warn(
      'OXDS_NOT_SUPPORTED',
      'gzip.excludedPatterns is not supported: responses of every path are compressed',
      `${field}.excludedPatterns`,
    );
  if (out.blackList.length > 0)
    p.warn(
      'OXDS_NOT_SUPPORTED',
      'gzip.blackList is not supported (Envoy only has a content-type allow list): ignored',
      `${field}.blackList`,
    );
  out.whiteList.forEach((t, i) => {
    if (t.includes('*'))
      p.warn(
        'OXDS_NOT_SUPPORTED',
        `gzip.whiteList entry ${JSON.stringify(t)}: wildcards are not supported (exact content types only): ignored`,
        `${field}.whiteList[${i}]`,
      );
  });
  out.whiteList = out.whiteList.filter((t) => !t.includes('*'));
  return out;
}

export function healthCheckFrom(v: unknown): HealthCheckSettings | undefined {
  const o = asObject(v);
  if (!bool(o, 'enabled', false)) return undefined;
  const url = str(o, 'url') ?? '/';
  return { url: url.startsWith('/') ? url : `/${url}` };
}

export function canaryFrom(
  v: unknown,
  ns: string,
  idx: KubeIndex,
  field: string,
  root: string,
  p: Problems,
): CanarySettings | undefined {
  const o = asObject(v);
  if (!bool(o, 'enabled', false)) return undefined;
  const traffic = Math.min(1, Math.max(0, num(o, 'traffic') ?? 0.2));
  const t = resolveDescriptorTargets({ targets: Array.isArray(o['targets']) ? o['targets'] : [] }, ns, idx);
  const at = (item: ProblemItem): string => `${field}.${(item.field ?? '').replace(/^spec\./, '')}`;
  for (const item of [...t.warnings, ...t.dropped]) p.warn(item.code, item.message, at(item));
  for (const item of t.notices) p.notice(item.code, item.message, at(item));
  const canaryRoot = str(o, 'root') ?? '/';
  if (t.targets.length === 0) {
    p.warn('OXDS_MISSING_FIELD', 'canary is enabled without usable targets: ignored', `${field}.targets`);
    return undefined;
  }
  if (canaryRoot !== root)
    p.warn(
      'OXDS_NOT_SUPPORTED',
      `canary.root ${JSON.stringify(canaryRoot)} differs from root ${JSON.stringify(root)}: not supported, canary ` +
        `requests use the descriptor root`,
      `${field}.root`,
    );
  p.warn(
    'OXDS_NOT_SUPPORTED',
    'canary: requests are split by weight per request; the sticky otoroshi-canary cookie is not supported',
    `${field}.enabled`,
  );
  const canaryMtls = (x: Target): Target =>
    x.mtls?.field !== undefined
      ? { ...x, mtls: { ...x.mtls, field: x.mtls.field.replace(/^spec\./, `${field}.`) } }
      : x;
  return { traffic, targets: t.targets.map((x, i) => ({ ...canaryMtls(x), id: `c${i}` })), root: canaryRoot };
}

export function openApiUrlFrom(v: unknown): string | undefined {
  const u = str(asObject(v), 'openApiDescriptorUrl');
  return u !== undefined && u.trim() !== '' ? u.trim() : undefined;
}

// ------------------------------------------------------------------ not supported

interface Unsupported {
  field: string;
  /** True when the user set it to something Envoy cannot do. */
  set(spec: JsonObject): boolean;
  why: string;
}

const nonEmpty = (v: unknown): boolean =>
  Array.isArray(v) ? v.length > 0 : isObject(v) ? Object.keys(v).length > 0 : v !== undefined && v !== null && v !== '';
const enabledBlock = (v: unknown): boolean => isObject(v) && v['enabled'] === true;

/** Settings of Otoroshi's secured communication with the backend (the state/claim challenge). */
export const SECCOM_FIELDS = [
  'sendInfoToken',
  'sendStateChallenge',
  'secComVersion',
  'secComInfoTokenVersion',
  'secComTtl',
  'secComHeaders',
  'secComExcludedPatterns',
  'secComSettings',
  'secComUseSameAlgo',
  'secComAlgoChallengeOtoToBack',
  'secComAlgoChallengeBackToOto',
  'secComAlgoInfoToken',
] as const;
const SECCOM_WHY =
  "Otoroshi's state/claim challenge with the backend is not implemented: enforceSecureCommunication is off here, " +
  'see docs/compatibility.md';

/** Fields a user can set that this control plane cannot express in Envoy (docs/compatibility.md). */
export const UNSUPPORTED_DESCRIPTOR_FIELDS: readonly Unsupported[] = [
  {
    field: 'enforceSecureCommunication',
    set: (s) => s['enforceSecureCommunication'] === true,
    why:
      "Otoroshi's state/claim challenge with the backend is not implemented: the backend gets no Otoroshi-State / " +
      'Otoroshi-Claim, see docs/compatibility.md',
  },
  // With enforceSecureCommunication: false they mean nothing in Otoroshi either.
  ...SECCOM_FIELDS.map((f): Unsupported => ({
    field: f,
    set: (s) => s['enforceSecureCommunication'] !== false && nonEmpty(s[f]),
    why: SECCOM_WHY,
  })),
  {
    field: 'transformerRefs',
    set: (s) => nonEmpty(s['transformerRefs']) || nonEmpty(s['transformerRef']),
    why: 'Otoroshi request transformers (Scala scripts)',
  },
  {
    field: 'transformerConfig',
    set: (s) => nonEmpty(s['transformerConfig']),
    why: 'Otoroshi request transformers (Scala scripts)',
  },
  {
    field: 'accessValidator',
    set: (s) => enabledBlock(s['accessValidator']),
    why: 'Otoroshi access validator scripts',
  },
  { field: 'preRouting', set: (s) => enabledBlock(s['preRouting']), why: 'Otoroshi pre-routing scripts' },
  { field: 'plugins', set: (s) => enabledBlock(s['plugins']), why: 'Otoroshi plugins' },
  {
    field: 'privateApp',
    set: (s) => s['privateApp'] === true,
    why: 'private apps need an Otoroshi auth module login flow',
  },
  { field: 'authConfigRef', set: (s) => nonEmpty(s['authConfigRef']), why: 'auth modules (login flows)' },
  { field: 'clientValidatorRef', set: (s) => nonEmpty(s['clientValidatorRef']), why: 'client certificate validators' },
  {
    field: 'strictlyPrivate',
    set: (s) => s['strictlyPrivate'] === true,
    why: 'private apps need an Otoroshi auth module login flow',
  },
  {
    field: 'securityExcludedPatterns',
    set: (s) => nonEmpty(s['securityExcludedPatterns']),
    why: 'private apps need an Otoroshi auth module login flow',
  },
  {
    field: 'letsEncrypt',
    set: (s) => s['letsEncrypt'] === true,
    why: "Let's Encrypt certificates are not ordered by this control plane",
  },
  { field: 'tcpUdpTunneling', set: (s) => s['tcpUdpTunneling'] === true, why: 'TCP/UDP tunnels over HTTP' },
  {
    field: 'issueCert',
    set: (s) => s['issueCert'] === true,
    why: 'issuing certificates from a descriptor (use a Certificate)',
  },
  {
    field: 'chaosConfig',
    set: (s) => enabledBlock(s['chaosConfig']),
    why: "Otoroshi's chaos engineering (Snow Monkey)",
  },
  {
    field: 'redirectToLocal',
    set: (s) => s['redirectToLocal'] === true,
    why: 'redirection to a local development target',
  },
  {
    field: 'allowHttp10',
    set: (s) => s['allowHttp10'] === false,
    why: 'refusing HTTP/1.0 per descriptor (HTTP/1.0 is accepted on every route)',
  },
  {
    field: 'clientConfig.proxy',
    set: (s) => nonEmpty(asObject(s['clientConfig'])['proxy']),
    why: 'calling targets through an HTTP proxy',
  },
  {
    field: 'targetsLoadBalancing.ratio',
    set: (s) => asObject(s['targetsLoadBalancing'])['type'] === 'WeightedBestResponseTime',
    why: 'WeightedBestResponseTime ratio (LEAST_REQUEST is used)',
  },
  { field: 'api.exposeApi', set: (s) => asObject(s['api'])['exposeApi'] === true, why: "Otoroshi's developer portal" },
];

/** Where a spec field was written: `spec.<sub>` for a CRD, the annotation for an Ingress. */
export type FieldOf = (sub: string) => string;
export const specField: FieldOf = (sub) => `spec.${sub}`;

/** One warning per unsupported field the spec sets. */
export function reportUnsupported(spec: JsonObject, p: Problems, at: FieldOf = specField): void {
  for (const u of UNSUPPORTED_DESCRIPTOR_FIELDS) {
    if (u.set(spec)) p.warn('OXDS_NOT_SUPPORTED', `${u.field} is not supported (${u.why}): ignored`, at(u.field));
  }
  const targets = Array.isArray(spec['targets']) ? spec['targets'] : [];
  targets.forEach((t, i) => {
    const pred = asObject(asObject(t)['predicate']);
    if (pred['type'] !== undefined && pred['type'] !== 'AlwaysMatch')
      p.warn(
        'OXDS_NOT_SUPPORTED',
        `target predicate ${JSON.stringify(pred['type'])} is not supported: the target is always used`,
        at(`targets[${i}].predicate`),
      );
  });
}

/** Fields of the spec read by this file. */
export const FEATURE_FIELDS = ['ipFiltering', 'redirection', 'cors', 'gzip', 'healthCheck', 'canary', 'api'];

/** Apply the edge features of a ServiceDescriptor spec to `d`. */
export function applyFeatures(
  d: Descriptor,
  spec: JsonObject,
  ns: string,
  idx: KubeIndex,
  p: Problems,
  at: FieldOf = specField,
): void {
  const ip = ipFilteringFrom(spec['ipFiltering'], at('ipFiltering'), p);
  if (ip) d.ipFiltering = ip;
  const r = redirectionFrom(spec['redirection'], at('redirection'), p);
  if (r) d.redirection = r;
  const c = corsFrom(spec['cors'], at('cors'), p);
  if (c) d.cors = c;
  const g = gzipFrom(spec['gzip'], at('gzip'), p);
  if (g) d.gzip = g;
  const h = healthCheckFrom(spec['healthCheck']);
  if (h) d.healthCheck = h;
  const cn = canaryFrom(spec['canary'], ns, idx, at('canary'), d.root, p);
  if (cn) d.canary = cn;
  const api = openApiUrlFrom(spec['api']);
  if (api) d.openApiDescriptorUrl = api;
  reportUnsupported(spec, p, at);
  for (const k of [
    'additionalHeaders',
    'additionalHeadersOut',
    'missingOnlyHeadersIn',
    'missingOnlyHeadersOut',
    'headersVerification',
  ] as const) {
    for (const [h, v] of Object.entries(d[k] ?? {})) {
      if (v.includes('${'))
        p.warn(
          'OXDS_NOT_SUPPORTED',
          `expressions (\${...}) in header values are not supported: ${h} is sent / compared literally`,
          at(`${k}.${h}`),
        );
    }
  }
}

// ------------------------------------------------------------------ reserved header names

/**
 * `Host` and pseudo-headers (`:path`...): Envoy refuses to add or remove them (the whole route table would be
 * rejected).
 */
export function isReservedHeader(name: string): boolean {
  const n = name.trim().toLowerCase();
  return n === 'host' || n.startsWith(':');
}

const HEADER_MAPS = [
  'additionalHeaders',
  'additionalHeadersOut',
  'missingOnlyHeadersIn',
  'missingOnlyHeadersOut',
] as const;
const HEADER_LISTS = ['removeHeadersIn', 'removeHeadersOut'] as const;

/**
 * Reserved names in the header add/remove fields. `additionalHeaders: {Host: x}` (Otoroshi's way
 * to set the upstream Host) becomes the descriptor's host rewrite; every other use is dropped with
 * a warning naming the field: the descriptor keeps serving without it.
 */
export function dropReservedHeaders(d: Descriptor, p: Problems, prefix = 'spec'): void {
  for (const k of HEADER_MAPS) {
    const kept: Record<string, string> = {};
    for (const [h, v] of Object.entries(d[k])) {
      if (!isReservedHeader(h)) kept[h] = v;
      else if (k === 'additionalHeaders' && h.trim().toLowerCase() === 'host') d.hostRewrite = v;
      else
        p.warn(
          'OXDS_RESERVED_HEADER',
          `header ${JSON.stringify(h)} cannot be set here (Envoy manages Host and pseudo-headers): ignored`,
          `${prefix}.${k}.${h}`,
        );
    }
    d[k] = kept;
  }
  for (const k of HEADER_LISTS) {
    d[k].forEach((h, i) => {
      if (isReservedHeader(h))
        p.warn(
          'OXDS_RESERVED_HEADER',
          `header ${JSON.stringify(h)} cannot be removed (Envoy manages Host and pseudo-headers): ignored`,
          `${prefix}.${k}[${i}]`,
        );
    });
    d[k] = d[k].filter((h) => !isReservedHeader(h));
  }
}
