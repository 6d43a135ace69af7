// buildModel: ConfigView → Model + one ObjectStatus per object. Pure, deterministic, never throws.
import type {
  ApiKey,
  BuildResult,
  ConfigError,
  ConfigView,
  Descriptor,
  JwtVerifierModel,
  KubeObject,
  ObjectStatus,
  ServiceGroup,
  StoredObject,
  TlsBinding,
  TlsCertificate,
  CertificateRequest,
} from './types.js';
import { crdEntityId, namespaceOf } from './ids.js';
import { Problems, asObject, errorMessage, str, type ProblemItem } from './problems.js';
import { validateSpec } from './schemas.js';
import { buildKubeIndex } from './targets.js';
import { certIndex, resolveDescriptorCertRefs } from './cert-refs.js';
import { DEFAULT_SETTINGS, buildCrdDescriptor, type ModelSettings, type RefResolver } from './descriptor.js';
import { buildIngress, ingressClassProblem } from './ingress.js';
import { APIKEY_SECRET_TYPE, apiKeySecretValues, buildApiKey } from './apikey.js';
import { buildJwtVerifier, localJwtVerifier } from './jwt-verifier.js';
import { TLS_SECRET_TYPE, buildTlsCertificate } from './certs.js';
import { buildCertificate } from './certificate.js';
import { buildGlobalConfig } from './global-config.js';
import { buildTcpService } from './tcp-service.js';
import type { GlobalConfigModel, TcpServiceModel } from './types.js';
import { addMeshCertificate } from './mesh-certificate.js';

export type { ModelSettings } from './descriptor.js';
export { DEFAULT_SETTINGS } from './descriptor.js';

export const OTOROSHI_GROUP = 'proxy.otoroshi.io';
export const OTOROSHI_VERSIONS = ['v1alpha1', 'v1'];
export const OTOROSHI_KINDS = [
  'ServiceGroup',
  'ServiceDescriptor',
  'ApiKey',
  'Certificate',
  'GlobalConfig',
  'JwtVerifier',
  'AuthModule',
  'Script',
  'TcpService',
  'Admin',
] as const;

type Family = 'otoroshi' | 'Ingress' | 'IngressClass' | 'Service' | 'EndpointSlice' | 'Secret';

/** Kinds we read, with their normalised kind (`Apikey` → `ApiKey`); undefined for anything else. */
export function classify(apiVersion: string, kind: string): { kind: string; family: Family } | undefined {
  const k = kind === 'Apikey' ? 'ApiKey' : kind;
  const slash = apiVersion.indexOf('/');
  const group = slash >= 0 ? apiVersion.slice(0, slash) : '';
  const version = slash >= 0 ? apiVersion.slice(slash + 1) : apiVersion;
  if (
    group === OTOROSHI_GROUP &&
    OTOROSHI_VERSIONS.includes(version) &&
    (OTOROSHI_KINDS as readonly string[]).includes(k)
  ) {
    return { kind: k, family: 'otoroshi' };
  }
  if (
    k === 'Ingress' &&
    ['networking.k8s.io/v1', 'networking.k8s.io/v1beta1', 'extensions/v1beta1'].includes(apiVersion)
  )
    return { kind: k, family: 'Ingress' };
  if (k === 'IngressClass' && ['networking.k8s.io/v1', 'networking.k8s.io/v1beta1'].includes(apiVersion))
    return { kind: k, family: 'IngressClass' };
  if (k === 'Service' && apiVersion === 'v1') return { kind: k, family: 'Service' };
  if (k === 'EndpointSlice' && ['discovery.k8s.io/v1', 'discovery.k8s.io/v1beta1'].includes(apiVersion))
    return { kind: k, family: 'EndpointSlice' };
  if (k === 'Secret' && apiVersion === 'v1') return { kind: k, family: 'Secret' };
  return undefined;
}

/** Otoroshi kinds of the proxy.otoroshi.io group that otoroshi-xds does not serve (they configure Otoroshi itself). */
export const OTOROSHI_UNSERVED_KINDS = [
  'Tenant',
  'Organization',
  'Team',
  'DataExporter',
  'Route',
  'RouteComposition',
  'Backend',
  'ErrorTemplate',
  'WasmPlugin',
  'Draft',
  'SimpleAdmin',
];

/** Kinds read from other groups: a near spelling of one of them (wrong case, wrong version) is a mistake, not another product. */
const READ_KINDS = ['Ingress', 'IngressClass', 'Service', 'EndpointSlice', 'Secret'];

/**
 * Why an object of a kind we do not read is left out: a misspelt kind or version of our own group
 * (or a near spelling of a kind we read) is an error; anything else (Deployment,
 * CustomResourceDefinition, Otoroshi's Tenant or Team...) is outside our scope and skipped.
 */
export function unservedKind(apiVersion: string, kind: string): { misspelt: boolean; message: string } {
  const group = apiVersion.includes('/') ? apiVersion.slice(0, apiVersion.indexOf('/')) : '';
  const what = `${apiVersion} ${kind}`;
  if (group === OTOROSHI_GROUP) {
    if (OTOROSHI_UNSERVED_KINDS.includes(kind))
      return { misspelt: false, message: `${what} configures Otoroshi itself and has no meaning for Envoy: skipped` };
    const near = [...OTOROSHI_KINDS].find((k) => k.toLowerCase() === kind.toLowerCase());
    if (near !== undefined && near === kind)
      return {
        misspelt: true,
        message: `unsupported version ${apiVersion} of ${kind} (${OTOROSHI_VERSIONS.map((v) => `${OTOROSHI_GROUP}/${v}`).join(' or ')}): ignored`,
      };
    return {
      misspelt: true,
      message: `unknown kind ${what}${near !== undefined ? ` (did you mean ${near}?)` : ` (${OTOROSHI_GROUP} kinds: ${OTOROSHI_KINDS.join(', ')})`}: ignored`,
    };
  }
  if (group.toLowerCase() === OTOROSHI_GROUP || group.endsWith('.otoroshi.io'))
    return {
      misspelt: true,
      message: `unknown API group in ${what} (did you mean ${OTOROSHI_GROUP}/v1alpha1?): ignored`,
    };
  const near = READ_KINDS.find((k) => k.toLowerCase() === kind.toLowerCase());
  if (near !== undefined)
    return {
      misspelt: true,
      message: `unsupported ${what}${near !== kind ? ` (did you mean ${near}?)` : ' (this version is not read)'}: ignored`,
    };
  return { misspelt: false, message: `${what} is outside otoroshi-xds's scope: skipped` };
}

interface Entry {
  so: StoredObject;
  kind: string;
  family: Family | undefined;
  p: Problems;
  /** Set once the object is known to be ignored/invalid: no further processing. */
  done: boolean;
}

function ts(createdAt: string | undefined): number {
  if (createdAt === undefined) return Number.POSITIVE_INFINITY;
  const t = Date.parse(createdAt);
  return Number.isNaN(t) ? Number.POSITIVE_INFINITY : t;
}

/** Oldest first: creationTimestamp (missing = newest), then arrival seq, then key. */
function byAge(a: StoredObject, b: StoredObject): number {
  const d = ts(a.object.metadata.creationTimestamp) - ts(b.object.metadata.creationTimestamp);
  if (d !== 0 && !Number.isNaN(d)) return d;
  if (a.origin.seq !== b.origin.seq) return a.origin.seq - b.origin.seq;
  return a.key < b.key ? -1 : a.key > b.key ? 1 : 0;
}

const cmp = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0);

function guard(e: Entry, fn: () => void): void {
  try {
    fn();
  } catch (err) {
    e.p.error('OXDS_INVALID_FIELD', `unexpected error while processing this object: ${errorMessage(err)}`);
    e.done = true;
  }
}

function routeKeys(d: Descriptor): string[] {
  const headers = d.matchingHeaders
    .map((h) => `${h.name}=${h.regex}`)
    .sort()
    .join('&');
  const paths = d.paths.length === 0 ? ['*'] : d.paths.map((p) => `${p.type}:${p.value}`);
  const out: string[] = [];
  for (const h of d.hosts) for (const p of paths) out.push(`${h.toLowerCase()}|${p}|${headers}`);
  return out;
}

/**
 * Build the model. Every object of the view gets exactly one ObjectStatus; documents that never
 * became objects (view.loadErrors) get one status each too, keyed `file:<path>#<doc>` (or
 * `load:<n>` without a file), state `invalid`.
 */
export function buildModel(view: ConfigView, settings?: Partial<ModelSettings>): BuildResult {
  const s: ModelSettings = { ...DEFAULT_SETTINGS, ...(settings ?? {}) };
  const entries: Entry[] = [...view.objects].sort(byAge).map((so) => {
    const obj = so.object;
    const c =
      typeof obj?.apiVersion === 'string' && typeof obj?.kind === 'string'
        ? classify(obj.apiVersion, obj.kind)
        : undefined;
    const kind = c?.kind ?? (typeof obj?.kind === 'string' ? obj.kind : '');
    let p: Problems;
    try {
      p = Problems.of(so, kind);
      if (c?.family === 'IngressClass')
        p = new Problems(kind, '', so.object.metadata.name, so.origin.file, so.origin.doc); // cluster-scoped
    } catch {
      p = new Problems(kind, 'default', String(obj?.metadata?.name ?? ''), so.origin.file, so.origin.doc);
    }
    return { so, kind, family: c?.family, p, done: false };
  });

  // 1. classification & schemas
  for (const e of entries) {
    guard(e, () => {
      const obj = e.so.object;
      if (
        obj === null ||
        typeof obj !== 'object' ||
        typeof obj.metadata?.name !== 'string' ||
        obj.metadata.name === ''
      ) {
        e.p.error('OXDS_MISSING_FIELD', 'metadata.name is required', 'metadata.name');
        e.done = true;
        return;
      }
      if (e.family === undefined) {
        const why = unservedKind(String(obj.apiVersion), String(obj.kind));
        if (why.misspelt) e.p.error('OXDS_UNKNOWN_KIND', why.message);
        else e.p.notice('OXDS_SKIPPED_KIND', why.message);
        e.done = true;
        return;
      }
      if (e.family === 'otoroshi') {
        // `spec:` with nothing after it is null: same as no spec.
        if (obj.spec !== undefined && obj.spec !== null && (typeof obj.spec !== 'object' || Array.isArray(obj.spec))) {
          e.p.error('OXDS_INVALID_FIELD', 'spec must be an object', 'spec');
        } else {
          for (const pr of validateSpec(e.kind, obj.spec ?? {})) e.p.error(pr.code, pr.message, pr.field);
        }
        if (e.p.hasErrors) e.done = true;
      }
    });
  }
  const live = (f: Family, kind?: string): Entry[] =>
    entries.filter((e) => !e.done && e.family === f && (kind === undefined || e.kind === kind));

  // 2. Kubernetes objects
  for (const e of live('Service')) {
    guard(e, () => {
      const spec = asObject(e.so.object.spec);
      if (spec['type'] !== 'ExternalName' && !Array.isArray(spec['ports']))
        e.p.error('OXDS_MISSING_FIELD', 'spec.ports is required', 'spec.ports');
      if (e.p.hasErrors) e.done = true;
    });
  }
  for (const e of live('EndpointSlice')) {
    guard(e, () => {
      const svc = e.so.object.metadata.labels?.['kubernetes.io/service-name'];
      if (typeof svc !== 'string' || svc === '')
        e.p.warn(
          'OXDS_MISSING_FIELD',
          'no kubernetes.io/service-name label: this EndpointSlice belongs to no Service',
          'metadata.labels',
        );
    });
  }
  const idx = buildKubeIndex(
    live('Service').map((e) => e.so.object),
    live('EndpointSlice').map((e) => e.so.object),
    s.clusterDomain,
  );
  const ingressClasses: KubeObject[] = live('IngressClass').map((e) => e.so.object);

  const certificates: TlsCertificate[] = [];
  const tlsSecrets = new Map<string, boolean>();
  const apikeySecrets = new Map<string, { clientId?: string; clientSecret?: string }>();
  for (const e of live('Secret')) {
    guard(e, () => {
      const obj = e.so.object;
      const type = obj['type'];
      if (type === APIKEY_SECRET_TYPE) {
        // Our own exports follow the ApiKey (its spec wins); any other such Secret gives the key its credentials.
        if (obj.metadata.labels?.['app.kubernetes.io/managed-by'] !== 'otoroshi-xds')
          apikeySecrets.set(`${namespaceOf(obj)}/${obj.metadata.name}`, apiKeySecretValues(obj));
        e.done = true;
        return;
      }
      if (type !== TLS_SECRET_TYPE) {
        e.p.warn(
          'OXDS_UNKNOWN_KIND',
          `Secret of type ${JSON.stringify(type ?? 'Opaque')} is not used (only ${TLS_SECRET_TYPE}, and ${APIKEY_SECRET_TYPE} named by an ApiKey's secretName)`,
        );
        e.done = true;
        return;
      }
      const c = buildTlsCertificate(e.so, s.now, e.p);
      tlsSecrets.set(`${namespaceOf(obj)}/${obj.metadata.name}`, c !== undefined);
      if (c !== undefined) certificates.push(c);
      else e.done = true;
    });
  }

  // 2b. Certificate CRs: user-provided PEM, or a csr for the CA stage (after buildModel).
  const certificateRequests: CertificateRequest[] = [];
  const certBindings: TlsBinding[] = [];
  const secretOwner = new Map<string, string>(certificates.map((c) => [c.secretName, c.sourceKey]));
  for (const e of live('otoroshi', 'Certificate')) {
    guard(e, () => {
      const out = buildCertificate(e.so, s.now, e.p);
      if (e.p.hasErrors) {
        e.done = true;
        return;
      }
      const name = out.request?.secretName ?? out.provided?.secretName;
      if (name === undefined) return;
      const prev = secretOwner.get(name);
      if (prev !== undefined) {
        e.p.error('OXDS_DUPLICATE_OBJECT', `SDS secret name ${name} is already used by ${prev}`);
        e.done = true;
        return;
      }
      secretOwner.set(name, e.so.key);
      tlsSecrets.set(name, true); // Ingress TLS may name a Certificate CR (file mode)
      if (out.request !== undefined) certificateRequests.push(out.request);
      if (out.provided !== undefined) certificates.push(out.provided);
      if (out.binding !== undefined) certBindings.push(out.binding);
    });
  }

  // 3. GlobalConfig: only one (the oldest is kept)
  const globals = live('otoroshi', 'GlobalConfig');
  globals.slice(1).forEach((e) => {
    e.p.error(
      'OXDS_TOO_MANY_GLOBAL_CONFIGS',
      `There can only be one GlobalConfig entity ! (${globals[0]?.so.key ?? ''} is used)`,
    );
    e.done = true;
  });
  let globalConfig: GlobalConfigModel | undefined;
  const g0 = globals[0];
  if (g0 !== undefined)
    guard(g0, () => {
      globalConfig = buildGlobalConfig(g0.so, g0.p);
    });
  // 3b. TcpServices (issue 3): one listener each; a port used twice: the oldest wins.
  const tcpServices: TcpServiceModel[] = [];
  const tcpPorts = new Map<string, string>();
  for (const e of live('otoroshi', 'TcpService')) {
    guard(e, () => {
      const t = buildTcpService(e.so, e.p);
      if (t === undefined) {
        e.done = true;
        return;
      }
      const k = `${t.interface}:${t.port}`;
      const prev = tcpPorts.get(k);
      if (prev !== undefined && t.enabled) {
        e.p.error('OXDS_ROUTE_CONFLICT', `port ${k} is already used by ${prev}, which is older and wins`, 'spec.port');
        e.done = true;
        return;
      }
      if (t.enabled) tcpPorts.set(k, t.sourceKey);
      tcpServices.push(t);
    });
  }

  // 4. groups
  const groups: ServiceGroup[] = [];
  const groupById = new Map<string, ServiceGroup>();
  const groupByPath = new Map<string, string>(); // `<ns>/<name>` → id
  for (const e of live('otoroshi', 'ServiceGroup')) {
    guard(e, () => {
      const obj = e.so.object;
      const spec = asObject(obj.spec);
      const id = crdEntityId(obj);
      const prev = groupById.get(id);
      if (prev !== undefined) {
        e.p.error('OXDS_DUPLICATE_OBJECT', `group id ${id} is already used by ${prev.sourceKey}`);
        e.done = true;
        return;
      }
      const g: ServiceGroup = {
        id,
        name: str(spec, 'name') ?? obj.metadata.name,
        description: str(spec, 'description') ?? str(spec, 'desc') ?? '--',
        sourceKey: e.so.key,
        namespace: namespaceOf(obj),
      };
      groups.push(g);
      groupById.set(id, g);
      groupByPath.set(`${g.namespace}/${obj.metadata.name}`, id);
    });
  }

  // 4b. JwtVerifiers (global): referenced by descriptors' jwtVerifier.ids (DECISIONS 5)
  const jwtVerifiers: JwtVerifierModel[] = [];
  const verifierById = new Map<string, JwtVerifierModel>();
  const verifierByPath = new Map<string, string>();
  for (const e of live('otoroshi', 'JwtVerifier')) {
    guard(e, () => {
      const r = buildJwtVerifier(e.so);
      for (const err of r.errors) e.p.add(err.severity, err.code, err.message, err.field);
      if (r.verifier === undefined || e.p.hasErrors) {
        e.done = true;
        return;
      }
      const prev = verifierById.get(r.verifier.id);
      if (prev !== undefined) {
        e.p.error('OXDS_DUPLICATE_OBJECT', `JwtVerifier id ${r.verifier.id} is already used by ${prev.sourceKey}`);
        e.done = true;
        return;
      }
      jwtVerifiers.push(r.verifier);
      verifierById.set(r.verifier.id, r.verifier);
      verifierByPath.set(`${namespaceOf(e.so.object)}/${e.so.object.metadata.name}`, r.verifier.id);
    });
  }

  const descriptorById = new Map<string, Descriptor>();
  const descriptorByPath = new Map<string, string>();
  const refs: RefResolver = {
    group(ref, ns) {
      if (groupById.has(ref)) return ref;
      const byName = groupByPath.get(`${ns}/${ref}`) ?? (ref.includes('/') ? groupByPath.get(ref) : undefined);
      if (byName !== undefined) return byName;
      return ref === s.defaultGroup ? ref : undefined; // Otoroshi's built-in group
    },
    descriptor(ref, ns) {
      if (descriptorById.has(ref)) return ref;
      return descriptorByPath.get(`${ns}/${ref}`) ?? (ref.includes('/') ? descriptorByPath.get(ref) : undefined);
    },
    jwtVerifier(ref, ns) {
      if (verifierById.has(ref)) return ref;
      return verifierByPath.get(`${ns}/${ref}`) ?? (ref.includes('/') ? verifierByPath.get(ref) : undefined);
    },
  };
  const localVerifiers = new Map<Descriptor, JwtVerifierModel>();

  // 5. descriptors (CRDs and Ingresses)
  interface Candidate {
    d: Descriptor;
    owner: Entry;
  }
  const candidates: Candidate[] = [];
  for (const e of live('otoroshi', 'ServiceDescriptor')) {
    guard(e, () => {
      const extras: { localVerifier?: JwtVerifierModel } = {};
      const d = buildCrdDescriptor(e.so, s, idx, refs, e.p, extras, localJwtVerifier);
      if (d === undefined) e.done = true;
      else {
        candidates.push({ d, owner: e });
        if (extras.localVerifier !== undefined) localVerifiers.set(d, extras.localVerifier);
      }
    });
  }
  const tls: TlsBinding[] = [];
  const ingressOut = new Map<Entry, TlsBinding[]>();
  for (const e of live('Ingress')) {
    guard(e, () => {
      const why = ingressClassProblem(e.so.object, ingressClasses, s);
      if (why !== null) {
        e.p.warn('OXDS_INGRESS_IGNORED', `ignored: ${why}`);
        e.done = true;
        return;
      }
      const out = buildIngress(e.so, s, idx, refs, tlsSecrets, e.p);
      if (e.p.hasErrors) {
        e.done = true;
        return;
      }
      for (const d of out.descriptors) candidates.push({ d, owner: e });
      ingressOut.set(e, out.tls);
    });
  }

  // 5b. targets' mtlsConfig certificate references (id, then subject DN, as Otoroshi)
  const certIdx = certIndex(certificates, certificateRequests);
  for (let i = candidates.length - 1; i >= 0; i--) {
    const c = candidates[i] as Candidate;
    const r = resolveDescriptorCertRefs(c.d, certIdx);
    if (r.problems.length === 0) {
      const lv = localVerifiers.get(c.d);
      if (lv !== undefined && r.d !== c.d) localVerifiers.set(r.d, lv);
      c.d = r.d;
      continue;
    }
    c.owner.p.addItems('error', r.problems);
    candidates.splice(i, 1);
  }

  // 6. duplicate ids & route conflicts: oldest owner wins (creationTimestamp, then seq)
  const ownerOrder = new Map<Entry, number>(entries.map((e, i) => [e, i]));
  candidates.sort((a, b) => (ownerOrder.get(a.owner) ?? 0) - (ownerOrder.get(b.owner) ?? 0) || cmp(a.d.id, b.d.id));
  const claimed = new Map<string, Candidate>();
  const lost = new Map<Entry, ProblemItem[]>();
  const kept: Candidate[] = [];
  for (const c of candidates) {
    const loss = (item: ProblemItem): void => {
      const l = lost.get(c.owner) ?? [];
      l.push(item);
      lost.set(c.owner, l);
    };
    const prev = descriptorById.get(c.d.id);
    if (prev !== undefined) {
      loss({
        code: 'OXDS_DUPLICATE_OBJECT',
        message: `descriptor id ${c.d.id} is already used by ${prev.sourceKey}: this one is left out`,
      });
      continue;
    }
    if (c.d.enabled) {
      const keys = routeKeys(c.d);
      const hit = keys.map((k) => claimed.get(k)).find((x) => x !== undefined);
      if (hit !== undefined) {
        loss({
          code: 'OXDS_ROUTE_CONFLICT',
          message: `descriptor ${c.d.id} claims the same host/path/headers as ${hit.d.id} (${hit.d.sourceKey}), which is older and wins: this one is left out`,
        });
        continue;
      }
      for (const k of keys) claimed.set(k, c);
    }
    descriptorById.set(c.d.id, c.d);
    if (c.d.sourceKind === 'ServiceDescriptor')
      descriptorByPath.set(`${c.d.namespace}/${c.owner.so.object.metadata.name}`, c.d.id);
    kept.push(c);
  }
  for (const [owner, items] of lost) {
    const survivors = kept.some((c) => c.owner === owner);
    owner.p.addItems(survivors ? 'warning' : 'error', items);
    if (!survivors) owner.done = true;
  }
  const descriptors = kept.filter((c) => !c.owner.done).map((c) => c.d);
  for (const d of descriptors) {
    const lv = localVerifiers.get(d);
    if (lv !== undefined) jwtVerifiers.push(lv);
  }
  for (const [e, b] of ingressOut) if (!e.done) tls.push(...b);
  tls.push(...certBindings);

  // 7. apikeys
  const apikeys: ApiKey[] = [];
  const keyByClientId = new Map<string, ApiKey>();
  for (const e of live('otoroshi', 'ApiKey')) {
    guard(e, () => {
      const k = buildApiKey(e.so, s, refs, e.p, apikeySecrets);
      if (k === undefined) {
        e.done = true;
        return;
      }
      const prev = keyByClientId.get(k.clientId);
      if (prev !== undefined) {
        e.p.error(
          'OXDS_DUPLICATE_OBJECT',
          `clientId ${k.clientId} is already used by ${prev.sourceKey}`,
          'spec.clientId',
        );
        e.done = true;
        return;
      }
      keyByClientId.set(k.clientId, k);
      apikeys.push(k);
    });
  }

  // 8. statuses
  const statuses: ObjectStatus[] = entries.map((e) => ({
    key: e.so.key,
    kind: e.kind,
    namespace: e.p.namespace,
    name: e.p.name,
    origin: e.so.origin,
    state: e.p.hasErrors ? 'invalid' : 'valid',
    errors: e.p.errors,
  }));
  statuses.push(...loadErrorStatuses(view.loadErrors));
  statuses.sort((a, b) => cmp(a.key, b.key) || a.origin.seq - b.origin.seq);

  if (s.meshCertificate) addMeshCertificate(descriptors, s, certificateRequests, tls);
  const tlsSeen = new Set<string>();
  const tlsOut = tls
    .filter((b) => {
      const k = `${b.secretName}|${b.serverNames.join(',')}`;
      if (tlsSeen.has(k)) return false;
      tlsSeen.add(k);
      return true;
    })
    .sort((a, b) => cmp(a.secretName, b.secretName) || cmp(a.serverNames.join(','), b.serverNames.join(',')));

  return {
    model: {
      descriptors: descriptors.sort((a, b) => cmp(a.id, b.id)),
      groups: groups.sort((a, b) => cmp(a.id, b.id)),
      apikeys: apikeys.sort((a, b) => cmp(a.clientId, b.clientId)),
      certificates: certificates.sort((a, b) => cmp(a.secretName, b.secretName)),
      tls: tlsOut,
      jwtVerifiers: jwtVerifiers.sort((a, b) => cmp(a.id, b.id)),
      certificateRequests: certificateRequests.sort((a, b) => cmp(a.secretName, b.secretName)),
      tcpServices: tcpServices.sort((a, b) => cmp(a.id, b.id) || cmp(a.sourceKey, b.sourceKey)),
      ...(globalConfig !== undefined ? { globalConfig } : {}),
    },
    statuses,
  };
}

/** Statuses of documents that never became objects: one per (file, doc), key `file:<path>#<doc>`. */
export function loadErrorStatuses(errors: readonly ConfigError[]): ObjectStatus[] {
  const byKey = new Map<string, ObjectStatus>();
  errors.forEach((err, i) => {
    const key = err.file !== undefined ? `file:${err.file}#${err.doc ?? 0}` : `load:${i}`;
    let st = byKey.get(key);
    if (st === undefined) {
      const origin: ObjectStatus['origin'] = { seq: -1 };
      if (err.file !== undefined) origin.file = err.file;
      if (err.doc !== undefined) origin.doc = err.doc;
      st = {
        key,
        kind: err.kind ?? '',
        namespace: err.namespace ?? '',
        name: err.name ?? '',
        origin,
        state: 'valid',
        errors: [],
      };
      byKey.set(key, st);
    }
    st.errors.push(err);
    if (err.severity === 'error') st.state = 'invalid';
  });
  return [...byKey.values()];
}
