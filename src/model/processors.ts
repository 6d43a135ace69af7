// buildModel's processors, one per object kind, run in dependency order over one Build: Kubernetes
// objects, Secrets, Certificates, GlobalConfig, TcpServices, groups, JwtVerifiers, descriptors
// (CRDs, Ingresses; their certificate references; duplicate ids and route conflicts), apikeys.
import type {
  ApiKey,
  CertificateRequest,
  ConfigError,
  ConfigView,
  Descriptor,
  GlobalConfigModel,
  JwtVerifierModel,
  KubeObject,
  Model,
  ObjectStatus,
  ServiceGroup,
  StoredObject,
  TcpServiceModel,
  TlsBinding,
  TlsCertificate,
} from './types.js';
import { crdEntityId, namespaceOf } from './ids.js';
import { Problems, asObject, errorMessage, str, type ProblemItem } from './problems.js';
import { validateSpec } from './schemas.js';
import { buildKubeIndex } from './targets.js';
import { certIndex, resolveDescriptorCertRefs } from './cert-refs.js';
import { buildCrdDescriptor, type ModelSettings, type RefResolver } from './descriptor.js';
import { buildIngress, ingressClassProblem } from './ingress.js';
import { APIKEY_SECRET_TYPE, apiKeySecretValues, buildApiKey } from './apikey.js';
import { buildJwtVerifier, localJwtVerifier } from './jwt-verifier.js';
import { TLS_SECRET_TYPE, buildTlsCertificate } from './tls-secrets.js';
import { buildCertificate } from './certificate-crs.js';
import { buildGlobalConfig } from './global-config.js';
import { addMeshCertificate } from './mesh-certificate.js';
import { buildTcpService } from './tcp-service.js';
import { classify, readByMesh, unservedKind, type Family } from './kinds.js';
import { eachBatched, type Steps } from './steps.js';

interface Entry {
  so: StoredObject;
  kind: string;
  family: Family | undefined;
  p: Problems;
  /** Set once the object is known to be ignored/invalid: no further processing. */
  done: boolean;
  /** Position in the age order (oldest first). */
  order: number;
}

interface Candidate {
  d: Descriptor;
  owner: Entry;
}

/** What the processors share: the objects (oldest first) and what each kind contributes. */
export interface Build {
  s: ModelSettings;
  entries: Entry[];
  idx: ReturnType<typeof buildKubeIndex>;
  ingressClasses: KubeObject[];
  certificates: TlsCertificate[];
  /** `<ns>/<name>` of TLS material → whether it is usable (Ingress TLS may name a Certificate CR). */
  tlsSecrets: Map<string, boolean>;
  apikeySecrets: Map<string, { clientId?: string; clientSecret?: string }>;
  certificateRequests: CertificateRequest[];
  certBindings: TlsBinding[];
  globalConfig?: GlobalConfigModel;
  tcpServices: TcpServiceModel[];
  groups: ServiceGroup[];
  groupById: Map<string, ServiceGroup>;
  groupByPath: Map<string, string>;
  jwtVerifiers: JwtVerifierModel[];
  verifierById: Map<string, JwtVerifierModel>;
  verifierByPath: Map<string, string>;
  descriptorById: Map<string, Descriptor>;
  descriptorByPath: Map<string, string>;
  refs: RefResolver;
  localVerifiers: Map<Descriptor, JwtVerifierModel>;
  candidates: Candidate[];
  ingressOut: Map<Entry, TlsBinding[]>;
  descriptors: Descriptor[];
  tls: TlsBinding[];
  apikeys: ApiKey[];
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

function live(b: Build, f: Family, kind?: string): Entry[] {
  return b.entries.filter((e) => !e.done && e.family === f && (kind === undefined || e.kind === kind));
}

function entryOf(so: StoredObject, order: number): Entry {
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
  return { so, kind, family: c?.family, p, done: false, order };
}

function refResolver(b: Build): RefResolver {
  return {
    group(ref, ns) {
      if (b.groupById.has(ref)) return ref;
      const byName = b.groupByPath.get(`${ns}/${ref}`) ?? (ref.includes('/') ? b.groupByPath.get(ref) : undefined);
      if (byName !== undefined) return byName;
      return ref === b.s.defaultGroup ? ref : undefined; // Otoroshi's built-in group
    },
    descriptor(ref, ns) {
      if (b.descriptorById.has(ref)) return ref;
      return b.descriptorByPath.get(`${ns}/${ref}`) ?? (ref.includes('/') ? b.descriptorByPath.get(ref) : undefined);
    },
    jwtVerifier(ref, ns) {
      if (b.verifierById.has(ref)) return ref;
      return b.verifierByPath.get(`${ns}/${ref}`) ?? (ref.includes('/') ? b.verifierByPath.get(ref) : undefined);
    },
  };
}

export function newBuild(view: ConfigView, s: ModelSettings): Build {
  const b: Build = {
    s,
    entries: [...view.objects].sort(byAge).map(entryOf),
    idx: buildKubeIndex([], [], s.clusterDomain),
    ingressClasses: [],
    certificates: [],
    tlsSecrets: new Map(),
    apikeySecrets: new Map(),
    certificateRequests: [],
    certBindings: [],
    tcpServices: [],
    groups: [],
    groupById: new Map(),
    groupByPath: new Map(),
    jwtVerifiers: [],
    verifierById: new Map(),
    verifierByPath: new Map(),
    descriptorById: new Map(),
    descriptorByPath: new Map(),
    refs: undefined as unknown as RefResolver,
    localVerifiers: new Map(),
    candidates: [],
    ingressOut: new Map(),
    descriptors: [],
    tls: [],
    apikeys: [],
  };
  b.refs = refResolver(b);
  return b;
}

/** 1. Every object: a name, a kind we read (else skipped or refused), a spec its schema accepts. */
export function* checkShapes(b: Build): Steps {
  yield* eachBatched(b.entries, (e) =>
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
      if (e.family === undefined && readByMesh(String(obj.apiVersion), String(obj.kind))) {
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
    }),
  );
}

/**
 * The spec checks of checkShapes on objects not built yet (validateSpec keeps each result): a server
 * runs them on the files parsed so far while its parser works on the next ones.
 */
export function* prevalidateSpecs(objects: readonly StoredObject[]): Steps {
  yield* eachBatched(objects, ({ object: o }) => {
    if (typeof o?.apiVersion !== 'string' || typeof o.kind !== 'string') return;
    const c = classify(o.apiVersion, o.kind);
    const spec: unknown = o.spec;
    if (c?.family === 'otoroshi' && spec !== null && typeof spec === 'object' && !Array.isArray(spec))
      validateSpec(c.kind, spec);
  });
}

/** 2. Services, EndpointSlices (the target index) and IngressClasses. */
export function kubeObjects(b: Build): void {
  for (const e of live(b, 'Service')) {
    guard(e, () => {
      const spec = asObject(e.so.object.spec);
      if (spec['type'] !== 'ExternalName' && !Array.isArray(spec['ports']))
        e.p.error('OXDS_MISSING_FIELD', 'spec.ports is required', 'spec.ports');
      if (e.p.hasErrors) e.done = true;
    });
  }
  for (const e of live(b, 'EndpointSlice')) {
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
  b.idx = buildKubeIndex(
    live(b, 'Service').map((e) => e.so.object),
    live(b, 'EndpointSlice').map((e) => e.so.object),
    b.s.clusterDomain,
  );
  b.ingressClasses = live(b, 'IngressClass').map((e) => e.so.object);
}

/** 2a. Secrets: TLS certificates, and apikey credentials. */
export function secrets(b: Build): void {
  for (const e of live(b, 'Secret')) {
    guard(e, () => {
      const obj = e.so.object;
      const type = obj['type'];
      if (type === APIKEY_SECRET_TYPE) {
        // Our own exports follow the ApiKey (its spec wins); any other such Secret gives the key its credentials.
        if (obj.metadata.labels?.['app.kubernetes.io/managed-by'] !== 'otoroshi-xds')
          b.apikeySecrets.set(`${namespaceOf(obj)}/${obj.metadata.name}`, apiKeySecretValues(obj));
        e.done = true;
        return;
      }
      if (type !== TLS_SECRET_TYPE) {
        e.p.warn(
          'OXDS_UNKNOWN_KIND',
          `Secret of type ${JSON.stringify(type ?? 'Opaque')} is not used (only ${TLS_SECRET_TYPE}, and ` +
            `${APIKEY_SECRET_TYPE} named by an ApiKey's secretName)`,
        );
        e.done = true;
        return;
      }
      const c = buildTlsCertificate(e.so, b.s.now, e.p);
      b.tlsSecrets.set(`${namespaceOf(obj)}/${obj.metadata.name}`, c !== undefined);
      if (c !== undefined) b.certificates.push(c);
      else e.done = true;
    });
  }
}

/** 2b. Certificate CRs: user-provided PEM, or a csr for the CA stage (after buildModel). */
export function certificateCrs(b: Build): void {
  const secretOwner = new Map<string, string>(b.certificates.map((c) => [c.secretName, c.sourceKey]));
  for (const e of live(b, 'otoroshi', 'Certificate')) {
    guard(e, () => {
      const out = buildCertificate(e.so, b.s.now, e.p);
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
      b.tlsSecrets.set(name, true); // Ingress TLS may name a Certificate CR (file mode)
      if (out.request !== undefined) b.certificateRequests.push(out.request);
      if (out.provided !== undefined) b.certificates.push(out.provided);
      if (out.binding !== undefined) b.certBindings.push(out.binding);
    });
  }
}

/** 3. GlobalConfig: only one (the oldest is kept). */
export function globalConfigs(b: Build): void {
  const globals = live(b, 'otoroshi', 'GlobalConfig');
  globals.slice(1).forEach((e) => {
    e.p.error(
      'OXDS_TOO_MANY_GLOBAL_CONFIGS',
      `There can only be one GlobalConfig entity ! (${globals[0]?.so.key ?? ''} is used)`,
    );
    e.done = true;
  });
  const g0 = globals[0];
  if (g0 !== undefined)
    guard(g0, () => {
      b.globalConfig = buildGlobalConfig(g0.so, g0.p);
    });
}

/** 3b. TcpServices: one listener each; a port used twice: the oldest wins. */
export function tcpServices(b: Build): void {
  const tcpPorts = new Map<string, string>();
  for (const e of live(b, 'otoroshi', 'TcpService')) {
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
      b.tcpServices.push(t);
    });
  }
}

/** 4. ServiceGroups: one per id. */
export function serviceGroups(b: Build): void {
  for (const e of live(b, 'otoroshi', 'ServiceGroup')) {
    guard(e, () => {
      const obj = e.so.object;
      const spec = asObject(obj.spec);
      const id = crdEntityId(obj);
      const prev = b.groupById.get(id);
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
      b.groups.push(g);
      b.groupById.set(id, g);
      b.groupByPath.set(`${g.namespace}/${obj.metadata.name}`, id);
    });
  }
}

/** 4b. JwtVerifiers (global, not namespaced): referenced by descriptors' jwtVerifier.ids. */
export function jwtVerifiers(b: Build): void {
  for (const e of live(b, 'otoroshi', 'JwtVerifier')) {
    guard(e, () => {
      const r = buildJwtVerifier(e.so);
      for (const err of r.errors) e.p.add(err.severity, err.code, err.message, err.field);
      if (r.verifier === undefined || e.p.hasErrors) {
        e.done = true;
        return;
      }
      const prev = b.verifierById.get(r.verifier.id);
      if (prev !== undefined) {
        e.p.error('OXDS_DUPLICATE_OBJECT', `JwtVerifier id ${r.verifier.id} is already used by ${prev.sourceKey}`);
        e.done = true;
        return;
      }
      b.jwtVerifiers.push(r.verifier);
      b.verifierById.set(r.verifier.id, r.verifier);
      b.verifierByPath.set(`${namespaceOf(e.so.object)}/${e.so.object.metadata.name}`, r.verifier.id);
    });
  }
}

/** 5. ServiceDescriptor CRs → candidate descriptors (with their local JWT verifiers). */
export function* crdDescriptors(b: Build): Steps {
  yield* eachBatched(live(b, 'otoroshi', 'ServiceDescriptor'), (e) =>
    guard(e, () => {
      const extras: { localVerifier?: JwtVerifierModel } = {};
      const d = buildCrdDescriptor(e.so, b.s, b.idx, b.refs, e.p, extras, localJwtVerifier);
      if (d === undefined) e.done = true;
      else {
        b.candidates.push({ d, owner: e });
        if (extras.localVerifier !== undefined) b.localVerifiers.set(d, extras.localVerifier);
      }
    }),
  );
}

/** 5a. Ingresses of our class → candidate descriptors and TLS bindings. */
export function* ingresses(b: Build): Steps {
  yield* eachBatched(live(b, 'Ingress'), (e) =>
    guard(e, () => {
      const why = ingressClassProblem(e.so.object, b.ingressClasses, b.s);
      if (why !== null) {
        e.p.warn('OXDS_INGRESS_IGNORED', `ignored: ${why}`);
        e.done = true;
        return;
      }
      const out = buildIngress(e.so, b.s, b.idx, b.refs, b.tlsSecrets, e.p);
      if (e.p.hasErrors) {
        e.done = true;
        return;
      }
      for (const d of out.descriptors) b.candidates.push({ d, owner: e });
      b.ingressOut.set(e, out.tls);
    }),
  );
}

/** 5b. Targets' mtlsConfig certificate references (id, then subject DN, as Otoroshi). */
export function descriptorCertRefs(b: Build): void {
  const certIdx = certIndex(b.certificates, b.certificateRequests);
  for (let i = b.candidates.length - 1; i >= 0; i--) {
    const c = b.candidates[i] as Candidate;
    const r = resolveDescriptorCertRefs(c.d, certIdx);
    if (r.problems.length === 0) {
      const lv = b.localVerifiers.get(c.d);
      if (lv !== undefined && r.d !== c.d) b.localVerifiers.set(r.d, lv);
      c.d = r.d;
      continue;
    }
    c.owner.p.addItems('error', r.problems);
    b.candidates.splice(i, 1);
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

/** Why a candidate loses to an older one: its id is taken, or an enabled one claims its host/path/headers. */
function lossOf(b: Build, c: Candidate, claimed: Map<string, Candidate>): ProblemItem | undefined {
  const prev = b.descriptorById.get(c.d.id);
  if (prev !== undefined)
    return {
      code: 'OXDS_DUPLICATE_OBJECT',
      message: `descriptor id ${c.d.id} is already used by ${prev.sourceKey}: this one is left out`,
    };
  if (!c.d.enabled) return undefined;
  const keys = routeKeys(c.d);
  const hit = keys.map((k) => claimed.get(k)).find((x) => x !== undefined);
  if (hit !== undefined)
    return {
      code: 'OXDS_ROUTE_CONFLICT',
      message:
        `descriptor ${c.d.id} claims the same host/path/headers as ${hit.d.id} (${hit.d.sourceKey}), which is older ` +
        'and wins: this one is left out',
    };
  for (const k of keys) claimed.set(k, c);
  return undefined;
}

/** 6. Duplicate ids & route conflicts: the oldest owner wins (creationTimestamp, then seq). */
export function claimDescriptors(b: Build): void {
  b.candidates.sort((x, y) => x.owner.order - y.owner.order || cmp(x.d.id, y.d.id));
  const claimed = new Map<string, Candidate>();
  const lost = new Map<Entry, ProblemItem[]>();
  const kept: Candidate[] = [];
  for (const c of b.candidates) {
    const loss = lossOf(b, c, claimed);
    if (loss !== undefined) {
      lost.set(c.owner, [...(lost.get(c.owner) ?? []), loss]);
      continue;
    }
    b.descriptorById.set(c.d.id, c.d);
    if (c.d.sourceKind === 'ServiceDescriptor')
      b.descriptorByPath.set(`${c.d.namespace}/${c.owner.so.object.metadata.name}`, c.d.id);
    kept.push(c);
  }
  for (const [owner, items] of lost) {
    const survivors = kept.some((c) => c.owner === owner);
    owner.p.addItems(survivors ? 'warning' : 'error', items);
    if (!survivors) owner.done = true;
  }
  b.descriptors = kept.filter((c) => !c.owner.done).map((c) => c.d);
  for (const d of b.descriptors) {
    const lv = b.localVerifiers.get(d);
    if (lv !== undefined) b.jwtVerifiers.push(lv);
  }
  for (const [e, tls] of b.ingressOut) if (!e.done) b.tls.push(...tls);
  b.tls.push(...b.certBindings);
}

/** 7. ApiKeys: one per clientId. */
export function* apiKeys(b: Build): Steps {
  const keyByClientId = new Map<string, ApiKey>();
  yield* eachBatched(live(b, 'otoroshi', 'ApiKey'), (e) =>
    guard(e, () => {
      const k = buildApiKey(e.so, b.s, b.refs, e.p, b.apikeySecrets);
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
      b.apikeys.push(k);
    }),
  );
}

/** 8. One status per object, and per document that never became one. */
export function statusesOf(b: Build, view: ConfigView): ObjectStatus[] {
  const statuses: ObjectStatus[] = b.entries.map((e) => ({
    key: e.so.key,
    kind: e.kind,
    namespace: e.p.namespace,
    name: e.p.name,
    origin: e.so.origin,
    state: e.p.hasErrors ? 'invalid' : 'valid',
    errors: e.p.errors,
  }));
  statuses.push(...loadErrorStatuses(view.loadErrors));
  return statuses.sort((x, y) => cmp(x.key, y.key) || x.origin.seq - y.origin.seq);
}

/** TLS bindings without repeats, by secret then server names. */
function tlsOf(b: Build): TlsBinding[] {
  const seen = new Set<string>();
  return b.tls
    .filter((t) => {
      const k = `${t.secretName}|${t.serverNames.join(',')}`;
      if (seen.has(k)) return false;
      seen.add(k);
      return true;
    })
    .sort((x, y) => cmp(x.secretName, y.secretName) || cmp(x.serverNames.join(','), y.serverNames.join(',')));
}

/** The model, every list sorted. */
/** The mesh certificate (wildcards of the mesh domain), when enabled: one more request and its bindings. */
export function meshCertificate(b: Build): void {
  if (b.s.meshCertificate) addMeshCertificate(b.descriptors, b.s, b.certificateRequests, b.tls);
}

export function modelOf(b: Build): Model {
  return {
    descriptors: b.descriptors.sort((x, y) => cmp(x.id, y.id)),
    groups: b.groups.sort((x, y) => cmp(x.id, y.id)),
    apikeys: b.apikeys.sort((x, y) => cmp(x.clientId, y.clientId)),
    certificates: b.certificates.sort((x, y) => cmp(x.secretName, y.secretName)),
    tls: tlsOf(b),
    jwtVerifiers: b.jwtVerifiers.sort((x, y) => cmp(x.id, y.id)),
    certificateRequests: b.certificateRequests.sort((x, y) => cmp(x.secretName, y.secretName)),
    tcpServices: b.tcpServices.sort((x, y) => cmp(x.id, y.id) || cmp(x.sourceKey, y.sourceKey)),
    ...(b.globalConfig !== undefined ? { globalConfig: b.globalConfig } : {}),
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
