// Target parsing and resolution (docs/decisions.md: "Service targets").
import { isIP } from 'node:net';
import type { KubeObject, SocketEndpoint, Target, TargetMtls } from './types.js';
import { asObject, bool, isObject, num, str, strArray, type JsonObject, type ProblemItem } from './problems.js';
import { namespaceOf } from './ids.js';

/** The Kubernetes objects target resolution reads. Keys are `<ns>/<name>`. */
export interface KubeIndex {
  services: Map<string, KubeObject>;
  /** EndpointSlices by `<ns>/<service name>` (label `kubernetes.io/service-name`). */
  slices: Map<string, KubeObject[]>;
  clusterDomain: string;
}

export function buildKubeIndex(
  services: readonly KubeObject[],
  slices: readonly KubeObject[],
  clusterDomain: string,
): KubeIndex {
  const idx: KubeIndex = { services: new Map(), slices: new Map(), clusterDomain };
  for (const s of services) idx.services.set(`${namespaceOf(s)}/${s.metadata.name}`, s);
  for (const es of slices) {
    const svc = es.metadata.labels?.['kubernetes.io/service-name'];
    if (typeof svc !== 'string' || svc === '') continue;
    const k = `${namespaceOf(es)}/${svc}`;
    const list = idx.slices.get(k) ?? [];
    list.push(es);
    idx.slices.set(k, list);
  }
  return idx;
}

type Protocol = Target['protocol'];

interface TargetTemplate {
  weight: number;
  protocol: Protocol;
  scheme?: 'http' | 'https';
}

export interface TargetOutcome {
  targets: Target[];
  /** Problems that cost a target (error if no target is left, else warning). */
  dropped: ProblemItem[];
  /** Problems that never invalidate (weight 0 ...). */
  warnings: ProblemItem[];
  /** Fallbacks taken (a Service without endpoints reached by its DNS name). */
  notices: ProblemItem[];
}

function protocolOf(v: unknown): Protocol {
  return v === 'HTTP/1.0' || v === 'HTTP/2.0' ? v : 'HTTP/1.1';
}
function schemeOf(v: unknown): 'http' | 'https' | undefined {
  if (typeof v !== 'string') return undefined;
  const s = v.toLowerCase();
  // `ahttp` / `ahttps`: Otoroshi's same schemes through its Akka HTTP client.
  const plain = s === 'ahttp' || s === 'ahttps' ? s.slice(1) : s;
  return plain === 'http' || plain === 'https' ? plain : undefined;
}
function defaultPort(scheme: 'http' | 'https'): number {
  return scheme === 'https' ? 443 : 80;
}
function stripBrackets(h: string): string {
  return h.startsWith('[') && h.endsWith(']') ? h.slice(1, -1) : h;
}
function validPort(p: number): boolean {
  return Number.isInteger(p) && p >= 1 && p <= 65535;
}

/** `host`, `host:port`, `[v6]:port`, bare v6. */
function splitHostPort(hp: string): { host: string; port?: number } | null {
  const s = hp.trim();
  if (s === '' || /[\s/?#@]/.test(s)) return null;
  if (isIP(s) === 6) return { host: s };
  const m = /^(\[[^\]]+\]|[^:]+)(?::(\d+))?$/.exec(s);
  if (m === null || m[1] === undefined) return null;
  const host = stripBrackets(m[1]);
  if (m[2] === undefined) return { host };
  return { host, port: Number(m[2]) };
}

function hostTarget(
  id: string,
  scheme: 'http' | 'https',
  host: string,
  port: number,
  t: TargetTemplate,
  ipAddress: string | undefined,
): Target | ProblemItem {
  if (!validPort(port)) return { code: 'OXDS_INVALID_TARGET', message: `invalid port ${port}` };
  const base = { id, scheme, host, port, weight: t.weight, protocol: t.protocol };
  const staticTarget = (ip: string): Target => ({
    ...base,
    resolution: { type: 'static', endpoints: [{ ip, port, ready: true }] },
  });
  if (ipAddress !== undefined && ipAddress !== '') {
    if (isIP(ipAddress) === 0)
      return { code: 'OXDS_INVALID_TARGET', message: `ipAddress ${JSON.stringify(ipAddress)} is not an IP address` };
    return staticTarget(ipAddress);
  }
  if (isIP(host) !== 0) return staticTarget(host);
  return { ...base, resolution: { type: 'dns', hostname: host, port } };
}

function isProblem(x: Target | ProblemItem): x is ProblemItem {
  return 'code' in x;
}

/**
 * A Service-backed target. `hostForm`: `fqdn` (CRDs: `<svc>.<ns>.svc.<clusterDomain>`) or `short`
 * (Ingress: `<svc>`, as Otoroshi does).
 */
/** The Service port a target names: by number, by name (or digits), or the only one when it names none. */
function servicePortOf(
  ports: readonly JsonObject[],
  servicePort: unknown,
  ns: string,
  name: string,
): { port: JsonObject } | { problem: ProblemItem } {
  let port: JsonObject | undefined;
  if (servicePort === undefined || servicePort === null || servicePort === '') {
    if (ports.length === 1) port = ports[0];
    else
      return {
        problem: {
          code: 'OXDS_UNRESOLVED_REFERENCE',
          message: `Service ${ns}/${name} has ${ports.length} ports: servicePort is required`,
        },
      };
  } else if (typeof servicePort === 'number') {
    port = ports.find((p) => p['port'] === servicePort);
  } else if (typeof servicePort === 'string') {
    port =
      ports.find((p) => p['name'] === servicePort) ??
      (/^\d+$/.test(servicePort) ? ports.find((p) => p['port'] === Number(servicePort)) : undefined);
  }
  if (port === undefined)
    return {
      problem: {
        code: 'OXDS_UNRESOLVED_REFERENCE',
        message: `Service ${ns}/${name} has no port ${JSON.stringify(servicePort)}`,
      },
    };
  return { port };
}

/** Endpoints of a Service port from its EndpointSlices (IP addresses, ready if any slice says so), sorted. */
function sliceEndpoints(slices: readonly JsonObject[], portName: string): SocketEndpoint[] {
  const eps = new Map<string, SocketEndpoint>();
  for (const es of slices) {
    const addressType = es['addressType'];
    if (addressType === 'FQDN') continue;
    const esPorts = (Array.isArray(es['ports']) ? es['ports'] : []).filter(isObject);
    // Port whose name equals the Service port's name (both may be empty), else the only port.
    let ep = esPorts.find((p) => (str(p, 'name') ?? '') === portName);
    if (ep === undefined && esPorts.length === 1) ep = esPorts[0];
    const epPort = ep !== undefined ? num(ep, 'port') : undefined;
    if (epPort === undefined) continue;
    for (const e of (Array.isArray(es['endpoints']) ? es['endpoints'] : []).filter(isObject)) {
      const ready = asObject(e['conditions'])['ready'] !== false;
      for (const ip of strArray(e, 'addresses')) {
        if (isIP(ip) === 0) continue;
        const k = `${ip}|${epPort}`;
        const prev = eps.get(k);
        eps.set(k, { ip, port: epPort, ready: ready || (prev?.ready ?? false) });
      }
    }
  }
  const endpoints = [...eps.values()].sort((a, b) => (a.ip === b.ip ? a.port - b.port : a.ip < b.ip ? -1 : 1));
  return endpoints;
}

export function serviceTarget(
  id: string,
  serviceName: string,
  servicePort: unknown,
  defaultNs: string,
  t: TargetTemplate,
  idx: KubeIndex,
  hostForm: 'fqdn' | 'short',
  /** Told when a fallback was taken (no endpoints known: DNS). */
  onNotice?: (item: ProblemItem) => void,
): Target | ProblemItem {
  let ns = defaultNs;
  let name = serviceName;
  const slash = serviceName.indexOf('/');
  if (slash >= 0) {
    ns = serviceName.slice(0, slash);
    name = serviceName.slice(slash + 1);
  }
  const svc = idx.services.get(`${ns}/${name}`);
  if (svc === undefined) return { code: 'OXDS_UNRESOLVED_REFERENCE', message: `Service ${ns}/${name} not found` };
  const spec = asObject(svc.spec);
  const ports = (Array.isArray(spec['ports']) ? spec['ports'] : []).filter(isObject);
  const found = servicePortOf(ports, servicePort, ns, name);
  if ('problem' in found) return found.problem;
  const port = found.port;
  const portNumber = num(port, 'port');
  if (portNumber === undefined || !validPort(portNumber))
    return { code: 'OXDS_INVALID_TARGET', message: `Service ${ns}/${name} port has no valid number` };
  const portName = str(port, 'name') ?? '';
  const scheme = t.scheme ?? (portNumber === 443 || portName === 'https' ? 'https' : 'http');
  const service = {
    namespace: ns,
    name,
    port: typeof servicePort === 'number' || typeof servicePort === 'string' ? servicePort : portNumber,
  };
  const base = { id, scheme, port: portNumber, weight: t.weight, protocol: t.protocol, service } as const;

  if (spec['type'] === 'ExternalName') {
    const ext = str(spec, 'externalName');
    if (ext === undefined || ext === '')
      return { code: 'OXDS_INVALID_TARGET', message: `ExternalName Service ${ns}/${name} has no externalName` };
    const h = ext.replace(/\.$/, '');
    return {
      ...base,
      host: h,
      resolution:
        isIP(h) !== 0
          ? { type: 'static', endpoints: [{ ip: h, port: portNumber, ready: true }] }
          : { type: 'dns', hostname: h, port: portNumber },
    };
  }
  const host = hostForm === 'fqdn' ? `${name}.${ns}.svc.${idx.clusterDomain}` : name;
  const slices = idx.slices.get(`${ns}/${name}`) ?? [];
  if (slices.length > 0) {
    const endpoints = sliceEndpoints(slices, portName);
    return { ...base, host, resolution: { type: 'static', endpoints } };
  }
  const clusterIP = str(spec, 'clusterIP');
  if (clusterIP === undefined || clusterIP === '' || clusterIP === 'None' || isIP(clusterIP) === 0) {
    // As Otoroshi: the Service's cluster DNS name (resolved by Envoy).
    const fqdn = `${name}.${ns}.svc.${idx.clusterDomain}`;
    onNotice?.({
      code: 'OXDS_DNS_FALLBACK',
      message:
        `Service ${ns}/${name} has no EndpointSlice and no clusterIP (yet): ` +
        `its DNS name ${fqdn}:${portNumber} is used`,
    });
    return { ...base, host, resolution: { type: 'dns', hostname: fqdn, port: portNumber } };
  }
  return {
    ...base,
    host,
    resolution: { type: 'static', endpoints: [{ ip: clusterIP, port: portNumber, ready: true }] },
  };
}

function weightOf(entry: JsonObject): number {
  const w = entry['weight'];
  return typeof w === 'number' && Number.isInteger(w) && w >= 0 ? w : 1;
}

/** One `targets[]` entry of a ServiceDescriptor (or the `targets`/`targetsFrom` object), with its mtlsConfig. */
export function parseTargetEntry(
  id: string,
  entry: JsonObject,
  ns: string,
  idx: KubeIndex,
  onNotice?: (item: ProblemItem) => void,
): Target | ProblemItem {
  const r = parseTargetAddress(id, entry, ns, idx, onNotice);
  if (isProblem(r)) return r;
  const m = targetMtlsFrom(entry['mtlsConfig']);
  return m ? { ...r, mtls: m } : r;
}

function parseTargetAddress(
  id: string,
  entry: JsonObject,
  ns: string,
  idx: KubeIndex,
  onNotice?: (item: ProblemItem) => void,
): Target | ProblemItem {
  const t: TargetTemplate = { weight: weightOf(entry), protocol: protocolOf(entry['protocol']) };
  const explicitScheme = schemeOf(entry['scheme']);
  const ipAddress = str(entry, 'ipAddress');
  const url = str(entry, 'url');
  if (url !== undefined) {
    let u: URL;
    try {
      u = new URL(url);
    } catch {
      return { code: 'OXDS_INVALID_TARGET', message: `invalid url ${JSON.stringify(url)}`, field: 'url' };
    }
    const scheme = schemeOf(u.protocol.replace(/:$/, ''));
    if (scheme === undefined)
      return {
        code: 'OXDS_INVALID_TARGET',
        message: `unsupported scheme in url ${JSON.stringify(url)} (http or https)`,
        field: 'url',
      };
    if (u.hostname === '')
      return { code: 'OXDS_INVALID_TARGET', message: `no host in url ${JSON.stringify(url)}`, field: 'url' };
    const port = u.port !== '' ? Number(u.port) : defaultPort(scheme);
    const r = hostTarget(id, scheme, stripBrackets(u.hostname), port, t, ipAddress);
    return isProblem(r) ? { ...r, field: r.message.startsWith('ipAddress') ? 'ipAddress' : 'url' } : r;
  }
  const host = str(entry, 'host');
  if (host !== undefined) {
    const scheme = explicitScheme ?? 'https'; // Otoroshi's Target reader default
    const hp = splitHostPort(host);
    if (hp === null)
      return {
        code: 'OXDS_INVALID_TARGET',
        message: `invalid host ${JSON.stringify(host)} (expected host or host:port)`,
        field: 'host',
      };
    const r = hostTarget(id, scheme, hp.host, hp.port ?? defaultPort(scheme), t, ipAddress);
    return isProblem(r) ? { ...r, field: r.message.startsWith('ipAddress') ? 'ipAddress' : 'host' } : r;
  }
  const serviceName = str(entry, 'serviceName');
  if (serviceName !== undefined && serviceName !== '') {
    if (explicitScheme !== undefined) t.scheme = explicitScheme;
    const r = serviceTarget(id, serviceName, entry['servicePort'], ns, t, idx, 'fqdn', (item) =>
      onNotice?.({ ...item, field: 'serviceName' }),
    );
    return isProblem(r) ? { ...r, field: 'serviceName' } : r;
  }
  return { code: 'OXDS_INVALID_TARGET', message: 'a target needs `url`, `host` or `serviceName`' };
}

/** All targets of a ServiceDescriptor spec (array, object form, `targetsFrom`). */
export function resolveDescriptorTargets(spec: JsonObject, ns: string, idx: KubeIndex): TargetOutcome {
  const out: TargetOutcome = { targets: [], dropped: [], warnings: [], notices: [] };
  const entries: { entry: JsonObject; field: string }[] = [];
  const targets = spec['targets'];
  if (Array.isArray(targets)) {
    targets.forEach((e, i) => entries.push({ entry: asObject(e), field: `spec.targets[${i}]` }));
  } else if (isObject(targets)) {
    entries.push({ entry: targets, field: 'spec.targets' });
  }
  if (isObject(spec['targetsFrom'])) entries.push({ entry: spec['targetsFrom'], field: 'spec.targetsFrom' });
  entries.forEach(({ entry, field }, i) => {
    const id = `t${i}`;
    if (entry['weight'] === 0) {
      out.warnings.push({ code: 'OXDS_INVALID_TARGET', message: 'weight 0: target dropped', field: `${field}.weight` });
      return;
    }
    const at = (item: ProblemItem): ProblemItem => ({
      ...item,
      field: item.field !== undefined ? `${field}.${item.field}` : field,
    });
    const r = parseTargetEntry(id, entry, ns, idx, (item) => out.notices.push(at(item)));
    if (isProblem(r)) out.dropped.push(at(r));
    else out.targets.push(r.mtls ? { ...r, mtls: { ...r.mtls, field: `${field}.mtlsConfig` } } : r);
  });
  return out;
}

// ------------------------------------------------------------------ mtlsConfig

export function targetMtlsFrom(v: unknown): TargetMtls | undefined {
  if (!isObject(v)) return undefined;
  // References as written: buildModel resolves them (name, ns/name, id, subject DN, built-in CA).
  const certs = strArray(v, 'certs').filter((c) => c.trim() !== '');
  const trustedCerts = strArray(v, 'trustedCerts').filter((c) => c.trim() !== '');
  const mtls = bool(v, 'mtls', certs.length > 0);
  const out: TargetMtls = {
    certs: mtls ? certs : [],
    trustedCerts,
    trustAll: bool(v, 'trustAll', false),
    loose: bool(v, 'loose', false),
  };
  return out.certs.length + out.trustedCerts.length > 0 || out.trustAll || out.loose ? out : undefined;
}
