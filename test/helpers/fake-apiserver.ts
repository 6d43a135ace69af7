// An in-process double of kube-apiserver, for what otoroshi-xds uses (plain HTTP on 127.0.0.1:0).
//
// Behaves like the real server where our client code can tell the difference:
//  * one etcd-like resourceVersion counter shared by every resource; list returns the current
//    one in `metadata.resourceVersion`; built-in list items carry no kind/apiVersion (CR items do);
//  * watch (`?watch=true`) streams JSON lines; `resourceVersion` unset or "0" starts with ADDED
//    events for every current object, a given version replays the history after it; a version
//    older than the compacted history gets an ERROR event with a 410 `Expired` Status, then the
//    stream ends (as kube-apiserver does); `allowWatchBookmarks=true` gets BOOKMARK events;
//    `timeoutSeconds` ends the stream; label selectors apply (an object leaving the selection
//    is sent as DELETED);
//  * create (409 AlreadyExists), update (409 Conflict on a stale resourceVersion), JSON merge
//    patch (strategic merge patch treated as a merge patch), delete, status subresource (writes
//    to `/status` only touch `.status`, writes to the object never touch it; `generation` moves
//    only with the spec), Secret `stringData` → `data`;
//  * errors are `Status` objects with reason and code.
// Test hooks: dropWatches(), expireHistory() (next resume → 410), setDown() (every request → 500),
// failNext(n), requests log.
import http from 'node:http';
import { randomUUID } from 'node:crypto';
import type { AddressInfo } from 'node:net';

export interface ResourceDef {
  group: string;
  version: string;
  /** Other versions served from the same storage (CRDs: v1alpha1 storage, v1 served). */
  alsoServed?: string[];
  plural: string;
  kind: string;
  namespaced: boolean;
  statusSubresource: boolean;
}

export type Obj = Record<string, unknown> & {
  apiVersion?: string;
  kind?: string;
  metadata: {
    name: string;
    namespace?: string;
    resourceVersion?: string;
    uid?: string;
    labels?: Record<string, string>;
    [k: string]: unknown;
  };
};

export const OTOROSHI_KINDS: ReadonlyArray<[kind: string, plural: string]> = [
  ['ServiceGroup', 'service-groups'],
  ['ServiceDescriptor', 'service-descriptors'],
  ['ApiKey', 'apikeys'],
  ['Certificate', 'certificates'],
  ['GlobalConfig', 'global-configs'],
  ['JwtVerifier', 'jwt-verifiers'],
  ['AuthModule', 'auth-modules'],
  ['Script', 'scripts'],
  ['TcpService', 'tcp-services'],
  ['Admin', 'admins'],
];

export const DEFAULT_RESOURCES: ResourceDef[] = [
  { group: '', version: 'v1', plural: 'services', kind: 'Service', namespaced: true, statusSubresource: true },
  { group: '', version: 'v1', plural: 'secrets', kind: 'Secret', namespaced: true, statusSubresource: false },
  { group: '', version: 'v1', plural: 'events', kind: 'Event', namespaced: true, statusSubresource: false },
  { group: '', version: 'v1', plural: 'namespaces', kind: 'Namespace', namespaced: false, statusSubresource: true },
  { group: '', version: 'v1', plural: 'pods', kind: 'Pod', namespaced: true, statusSubresource: true },
  {
    group: 'discovery.k8s.io',
    version: 'v1',
    plural: 'endpointslices',
    kind: 'EndpointSlice',
    namespaced: true,
    statusSubresource: false,
  },
  {
    group: 'networking.k8s.io',
    version: 'v1',
    plural: 'ingresses',
    kind: 'Ingress',
    namespaced: true,
    statusSubresource: true,
  },
  {
    group: 'networking.k8s.io',
    version: 'v1',
    plural: 'ingressclasses',
    kind: 'IngressClass',
    namespaced: false,
    statusSubresource: false,
  },
  {
    group: 'coordination.k8s.io',
    version: 'v1',
    plural: 'leases',
    kind: 'Lease',
    namespaced: true,
    statusSubresource: false,
  },
  {
    group: 'apps',
    version: 'v1',
    plural: 'deployments',
    kind: 'Deployment',
    namespaced: true,
    statusSubresource: true,
  },
  ...OTOROSHI_KINDS.map(([kind, plural]): ResourceDef => ({
    group: 'proxy.otoroshi.io',
    version: 'v1alpha1',
    alsoServed: ['v1'],
    plural,
    kind,
    namespaced: true,
    statusSubresource: true,
  })),
];

interface HistoryEvent {
  type: 'ADDED' | 'MODIFIED' | 'DELETED';
  rv: number;
  object: Obj;
  /** The object before the change (MODIFIED), for label-selector transitions. */
  old?: Obj;
}

interface Store {
  def: ResourceDef;
  objects: Map<string, Obj>;
  history: HistoryEvent[];
}

interface WatchConn {
  store: Store;
  ns: string | undefined;
  selector: Selector;
  fields: Selector;
  version: string;
  bookmarks: boolean;
  res: http.ServerResponse;
  timer?: NodeJS.Timeout;
}

export interface RequestRecord {
  method: string;
  path: string;
  query: string;
  watch: boolean;
  status: number;
  contentType?: string;
}

type Requirement = { key: string; op: '=' | '!=' | 'exists' | '!exists' | 'in' | 'notin'; values: string[] };
type Selector = Requirement[];

/** Kubernetes label selector syntax (equality- and set-based). */
export function parseSelector(s: string | null): Selector {
  if (!s) return [];
  const out: Selector = [];
  // split on commas not inside parentheses
  const parts: string[] = [];
  let depth = 0;
  let cur = '';
  for (const ch of s) {
    if (ch === '(') depth++;
    if (ch === ')') depth--;
    if (ch === ',' && depth === 0) {
      parts.push(cur);
      cur = '';
    } else cur += ch;
  }
  parts.push(cur);
  for (const raw of parts.map((p) => p.trim()).filter((p) => p !== '')) {
    let m: RegExpMatchArray | null;
    if ((m = raw.match(/^([^\s!=]+)\s+(in|notin)\s+\((.*)\)$/)))
      out.push({ key: m[1]!, op: m[2] as 'in' | 'notin', values: m[3]!.split(',').map((v) => v.trim()) });
    else if ((m = raw.match(/^([^\s!=]+)\s*!=\s*(.*)$/))) out.push({ key: m[1]!, op: '!=', values: [m[2]!.trim()] });
    else if ((m = raw.match(/^([^\s!=]+)\s*==?\s*(.*)$/))) out.push({ key: m[1]!, op: '=', values: [m[2]!.trim()] });
    else if ((m = raw.match(/^!([^\s!=]+)$/))) out.push({ key: m[1]!, op: '!exists', values: [] });
    else out.push({ key: raw, op: 'exists', values: [] });
  }
  return out;
}

function fieldValue(o: Obj, path: string): string | undefined {
  let cur: unknown = o;
  for (const seg of path.split('.'))
    cur = cur !== null && typeof cur === 'object' ? (cur as Record<string, unknown>)[seg] : undefined;
  return cur === undefined ? undefined : String(cur);
}

/** Field selectors (`metadata.name=x,type!=y`). */
function fieldsMatch(sel: Selector, o: Obj | undefined): boolean {
  if (!o) return false;
  return sel.every((r) =>
    r.op === '=' ? fieldValue(o, r.key) === r.values[0] : r.op === '!=' ? fieldValue(o, r.key) !== r.values[0] : true,
  );
}

function matches(sel: Selector, o: Obj | undefined, fields: Selector = []): boolean {
  if (!o) return false;
  if (!fieldsMatch(fields, o)) return false;
  const labels = o.metadata.labels ?? {};
  return sel.every((r) => {
    const v = labels[r.key];
    switch (r.op) {
      case '=':
        return v === r.values[0];
      case '!=':
        return v !== r.values[0];
      case 'exists':
        return v !== undefined;
      case '!exists':
        return v === undefined;
      case 'in':
        return v !== undefined && r.values.includes(v);
      case 'notin':
        return v === undefined || !r.values.includes(v);
    }
  });
}

/** RFC 7386 JSON merge patch. */
export function mergePatch(target: unknown, patch: unknown): unknown {
  if (patch === null || typeof patch !== 'object' || Array.isArray(patch)) return patch;
  const base: Record<string, unknown> =
    target !== null && typeof target === 'object' && !Array.isArray(target)
      ? { ...(target as Record<string, unknown>) }
      : {};
  for (const [k, v] of Object.entries(patch as Record<string, unknown>)) {
    if (v === null) delete base[k];
    else base[k] = mergePatch(base[k], v);
  }
  return base;
}

const clone = <T>(v: T): T => structuredClone(v);

function status(
  code: number,
  reason: string,
  message: string,
  details?: Record<string, unknown>,
): Record<string, unknown> {
  return {
    kind: 'Status',
    apiVersion: 'v1',
    metadata: {},
    status: 'Failure',
    message,
    reason,
    ...(details ? { details } : {}),
    code,
  };
}

class HttpError extends Error {
  constructor(
    readonly code: number,
    readonly reason: string,
    message: string,
  ) {
    super(message);
  }
}

export class FakeApiServer {
  private readonly server: http.Server;
  private readonly stores = new Map<string, Store>();
  private readonly watches = new Set<WatchConn>();
  private rv = 100;
  /** History at or below this resourceVersion is gone (compacted): resuming from it gets 410. */
  private compactedRv = 0;
  private down = false;
  private failures = 0;
  private failCode = 500;
  private bookmarkTimer: NodeJS.Timeout | undefined;
  readonly requests: RequestRecord[] = [];
  port = 0;

  constructor(
    resources: ResourceDef[] = DEFAULT_RESOURCES,
    private readonly opts: { bookmarkMs?: number } = {},
  ) {
    for (const d of resources) this.stores.set(`${d.group}/${d.plural}`, { def: d, objects: new Map(), history: [] });
    this.server = http.createServer((req, res) => {
      this.handle(req, res).catch((err: unknown) => {
        if (!res.headersSent) this.send(res, 500, status(500, 'InternalError', String(err)));
        else res.destroy();
      });
    });
  }

  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  async start(): Promise<this> {
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    this.port = (this.server.address() as AddressInfo).port;
    const every = this.opts.bookmarkMs ?? 1000;
    this.bookmarkTimer = setInterval(() => this.sendBookmarks(), every);
    this.bookmarkTimer.unref();
    return this;
  }

  async close(): Promise<void> {
    if (this.bookmarkTimer) clearInterval(this.bookmarkTimer);
    this.dropWatches();
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  /** A KubeConfig (as a plain options object for `KubeConfig.loadFromOptions`) pointing here. */
  kubeConfigOptions(): Record<string, unknown> {
    return {
      clusters: [{ name: 'fake', server: this.url, skipTLSVerify: true }],
      users: [{ name: 'fake', token: 'fake-token' }],
      contexts: [{ name: 'fake', cluster: 'fake', user: 'fake', namespace: 'default' }],
      currentContext: 'fake',
    };
  }

  // ------------------------------------------------------------------ test hooks

  /** Ends every open watch stream (as an API server restart or a load balancer would). */
  dropWatches(): void {
    for (const w of [...this.watches]) this.endWatch(w);
  }

  /** Compacts all history: a watch resuming from any earlier resourceVersion gets 410 Gone. */
  expireHistory(): void {
    this.compactedRv = this.rv;
    for (const s of this.stores.values()) s.history = [];
  }

  /** While down, every request is answered 500 and open watches are dropped. */
  setDown(down: boolean): void {
    this.down = down;
    if (down) this.dropWatches();
  }

  /** The next `n` requests get `code`. */
  failNext(n: number, code = 500): void {
    this.failures = n;
    this.failCode = code;
  }

  openWatches(): number {
    return this.watches.size;
  }

  /** Sends a BOOKMARK to every watch that asked for them. */
  sendBookmarks(): void {
    for (const w of this.watches) {
      if (!w.bookmarks) continue;
      const d = w.store.def;
      this.writeEvent(w, {
        type: 'BOOKMARK',
        object: {
          kind: d.kind,
          apiVersion: apiVersionOf(d, w.version),
          metadata: { resourceVersion: String(this.rv) },
        },
      });
    }
  }

  // ------------------------------------------------------------------ direct store access (test setup)

  private storeFor(group: string, plural: string): Store {
    const s = this.stores.get(`${group}/${plural}`);
    if (!s) throw new Error(`fake apiserver: no resource ${group}/${plural}`);
    return s;
  }

  private storeOfKind(apiVersion: string, kind: string): Store {
    const group = apiVersion.includes('/') ? apiVersion.split('/')[0]! : '';
    for (const s of this.stores.values()) if (s.def.group === group && s.def.kind === kind) return s;
    throw new Error(`fake apiserver: no kind ${apiVersion} ${kind}`);
  }

  /** Creates or replaces an object as a user's `kubectl apply` would (status kept on replace). */
  apply(o: Obj): Obj {
    const s = this.storeOfKind(String(o.apiVersion), String(o.kind));
    const ns = s.def.namespaced ? (o.metadata.namespace ?? 'default') : undefined;
    const existing = s.objects.get(keyOf(ns, o.metadata.name));
    if (!existing) return this.create(s, ns, clone(o));
    const next = clone(o);
    next.metadata.resourceVersion = existing.metadata.resourceVersion;
    return this.update(s, ns, o.metadata.name, next, false);
  }

  remove(apiVersion: string, kind: string, namespace: string | undefined, name: string): void {
    const s = this.storeOfKind(apiVersion, kind);
    this.delete(s, s.def.namespaced ? (namespace ?? 'default') : undefined, name);
  }

  get(apiVersion: string, kind: string, namespace: string | undefined, name: string): Obj | undefined {
    const s = this.storeOfKind(apiVersion, kind);
    const o = s.objects.get(keyOf(s.def.namespaced ? (namespace ?? 'default') : undefined, name));
    return o ? clone(o) : undefined;
  }

  list(apiVersion: string, kind: string, namespace?: string): Obj[] {
    const s = this.storeOfKind(apiVersion, kind);
    return [...s.objects.values()]
      .filter((o) => namespace === undefined || o.metadata.namespace === namespace)
      .map(clone);
  }

  // ------------------------------------------------------------------ storage semantics

  private nextRv(): string {
    return String(++this.rv);
  }

  private record(s: Store, ev: HistoryEvent): void {
    s.history.push(ev);
    if (s.history.length > 10_000) s.history.shift();
    for (const w of this.watches) if (w.store === s) this.deliver(w, ev);
  }

  private create(s: Store, ns: string | undefined, o: Obj): Obj {
    const name = o.metadata.name;
    if (typeof name !== 'string' || name === '')
      throw new HttpError(422, 'Invalid', `${s.def.kind} is invalid: metadata.name: Required value`);
    const key = keyOf(ns, name);
    if (s.objects.has(key))
      throw new HttpError(
        409,
        'AlreadyExists',
        `${s.def.plural}${s.def.group ? `.${s.def.group}` : ''} "${name}" already exists`,
      );
    if (s.def.statusSubresource && s.def.group === 'proxy.otoroshi.io') delete o['status'];
    normaliseSecret(s, o);
    o.apiVersion = apiVersionOf(s.def, s.def.version);
    o.kind = s.def.kind;
    o.metadata = {
      ...o.metadata,
      uid: randomUUID(),
      resourceVersion: this.nextRv(),
      creationTimestamp: new Date().toISOString().replace(/\.\d+Z$/, 'Z'),
      generation: 1,
    };
    if (ns !== undefined) o.metadata.namespace = ns;
    else delete o.metadata.namespace;
    s.objects.set(key, o);
    this.record(s, { type: 'ADDED', rv: this.rv, object: clone(o) });
    return clone(o);
  }

  /** `statusOnly`: the /status subresource (only `.status` changes); otherwise `.status` is kept. */
  private update(s: Store, ns: string | undefined, name: string, body: Obj, statusOnly: boolean): Obj {
    const key = keyOf(ns, name);
    const cur = s.objects.get(key);
    if (!cur)
      throw new HttpError(
        404,
        'NotFound',
        `${s.def.plural}${s.def.group ? `.${s.def.group}` : ''} "${name}" not found`,
      );
    const want = body.metadata?.resourceVersion;
    if (want !== undefined && want !== '' && want !== cur.metadata.resourceVersion) {
      throw new HttpError(
        409,
        'Conflict',
        `Operation cannot be fulfilled on ${s.def.plural}` +
          `${s.def.group ? `.${s.def.group}` : ''}` +
          ` "${name}": the object has been modified; please apply your changes to the latest version and try again`,
      );
    }
    if (body.metadata?.name !== undefined && body.metadata.name !== name)
      throw new HttpError(400, 'BadRequest', 'the name of the object does not match the name on the URL');
    let next: Obj;
    if (statusOnly) {
      next = clone(cur);
      if (body['status'] === undefined) delete next['status'];
      else next['status'] = clone(body['status']);
    } else {
      next = clone(body);
      normaliseSecret(s, next);
      if (s.def.statusSubresource) {
        if (cur['status'] === undefined) delete next['status'];
        else next['status'] = clone(cur['status']);
      }
      // immutable / server-owned metadata
      next.metadata = {
        ...next.metadata,
        uid: cur.metadata.uid,
        creationTimestamp: cur.metadata['creationTimestamp'],
        generation: cur.metadata['generation'],
      };
      if (ns !== undefined) next.metadata.namespace = ns;
      if (JSON.stringify(specOf(cur)) !== JSON.stringify(specOf(next)))
        next.metadata['generation'] = Number(cur.metadata['generation'] ?? 1) + 1;
    }
    next.apiVersion = cur.apiVersion;
    next.kind = cur.kind;
    next.metadata.name = name;
    // a no-op write does not bump the resourceVersion (kube-apiserver skips it)
    const sameAsBefore =
      JSON.stringify({ ...next, metadata: { ...next.metadata, resourceVersion: undefined } }) ===
      JSON.stringify({ ...cur, metadata: { ...cur.metadata, resourceVersion: undefined } });
    if (sameAsBefore) return clone(cur);
    next.metadata.resourceVersion = this.nextRv();
    s.objects.set(key, next);
    this.record(s, { type: 'MODIFIED', rv: this.rv, object: clone(next), old: clone(cur) });
    return clone(next);
  }

  private delete(s: Store, ns: string | undefined, name: string): Obj {
    const key = keyOf(ns, name);
    const cur = s.objects.get(key);
    if (!cur)
      throw new HttpError(
        404,
        'NotFound',
        `${s.def.plural}${s.def.group ? `.${s.def.group}` : ''} "${name}" not found`,
      );
    s.objects.delete(key);
    const gone = clone(cur);
    gone.metadata.resourceVersion = this.nextRv();
    this.record(s, { type: 'DELETED', rv: this.rv, object: gone });
    return clone(gone);
  }

  // ------------------------------------------------------------------ HTTP

  private send(res: http.ServerResponse, code: number, body: unknown): void {
    const text = JSON.stringify(body);
    res.writeHead(code, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
    res.end(text);
  }

  private async handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://x');
    const isWatch = url.searchParams.get('watch') === 'true' || url.searchParams.get('watch') === '1';
    const rec: RequestRecord = {
      method: req.method ?? 'GET',
      path: url.pathname,
      query: url.search,
      watch: isWatch,
      status: 0,
    };
    const ct = req.headers['content-type'];
    if (ct !== undefined) rec.contentType = ct;
    this.requests.push(rec);
    if (this.requests.length > 50_000) this.requests.splice(0, 10_000);
    const reply = (code: number, body: unknown): void => {
      rec.status = code;
      this.send(res, code, body);
    };
    if (this.down) return reply(500, status(500, 'InternalError', 'the API server is down (test hook)'));
    if (this.failures > 0) {
      this.failures--;
      return reply(
        this.failCode,
        status(this.failCode, this.failCode === 410 ? 'Expired' : 'InternalError', 'injected failure (test hook)'),
      );
    }
    if (req.headers.authorization !== 'Bearer fake-token')
      return reply(401, status(401, 'Unauthorized', 'Unauthorized'));
    const route = this.route(url.pathname);
    if (!route) return reply(404, status(404, 'NotFound', 'the server could not find the requested resource'));
    const { store, version, ns, name, sub } = route;
    try {
      const method = req.method ?? 'GET';
      if (method === 'GET' && name === undefined) {
        const selector = parseSelector(url.searchParams.get('labelSelector'));
        const fields = parseSelector(url.searchParams.get('fieldSelector'));
        if (isWatch) {
          rec.status = 200;
          return this.startWatch(store, version, ns, selector, fields, url, res);
        }
        return reply(200, this.listBody(store, version, ns, selector, fields));
      }
      if (method === 'GET' && name !== undefined) {
        const o = store.objects.get(keyOf(ns, name));
        if (!o)
          throw new HttpError(
            404,
            'NotFound',
            `${store.def.plural}${store.def.group ? `.${store.def.group}` : ''} "${name}" not found`,
          );
        return reply(200, withVersion(o, store.def, version));
      }
      const body = method === 'DELETE' ? undefined : await readJson(req);
      if (method === 'POST' && name === undefined) {
        const o = body as Obj;
        if (!o || typeof o !== 'object' || !o.metadata) throw new HttpError(400, 'BadRequest', 'body is not an object');
        if (ns !== undefined && o.metadata.namespace !== undefined && o.metadata.namespace !== ns)
          throw new HttpError(
            400,
            'BadRequest',
            'the namespace of the provided object does not match the namespace sent on the request',
          );
        return reply(201, withVersion(this.create(store, ns, o), store.def, version));
      }
      if (name === undefined) throw new HttpError(405, 'MethodNotAllowed', `${method} is not allowed on a collection`);
      if (sub !== undefined && sub !== 'status') throw new HttpError(404, 'NotFound', `no subresource ${sub}`);
      if (sub === 'status' && !store.def.statusSubresource)
        throw new HttpError(404, 'NotFound', `${store.def.kind} has no status subresource`);
      const statusOnly = sub === 'status';
      if (method === 'PUT')
        return reply(200, withVersion(this.update(store, ns, name, body as Obj, statusOnly), store.def, version));
      if (method === 'PATCH') {
        const type = String(req.headers['content-type'] ?? '')
          .split(';')[0]!
          .trim();
        if (type !== 'application/merge-patch+json' && type !== 'application/strategic-merge-patch+json') {
          throw new HttpError(
            415,
            'UnsupportedMediaType',
            'the body of the request was in an unknown format - accepted media types include: ' +
              `application/merge-patch+json, application/strategic-merge-patch+json (fake apiserver; got ${type})`,
          );
        }
        const cur = store.objects.get(keyOf(ns, name));
        if (!cur) throw new HttpError(404, 'NotFound', `${store.def.plural} "${name}" not found`);
        const patched = mergePatch(clone(cur), body) as Obj;
        // a patch carrying a resourceVersion is a precondition, like an update
        const pre = (body as Obj | undefined)?.metadata?.resourceVersion;
        patched.metadata.resourceVersion = pre ?? cur.metadata.resourceVersion;
        return reply(200, withVersion(this.update(store, ns, name, patched, statusOnly), store.def, version));
      }
      if (method === 'DELETE') {
        if (sub !== undefined) throw new HttpError(405, 'MethodNotAllowed', 'cannot delete a subresource');
        return reply(200, withVersion(this.delete(store, ns, name), store.def, version));
      }
      throw new HttpError(405, 'MethodNotAllowed', `${method} not allowed`);
    } catch (err) {
      if (err instanceof HttpError) return reply(err.code, status(err.code, err.reason, err.message));
      throw err;
    }
  }

  private route(
    pathname: string,
  ):
    | { store: Store; version: string; ns: string | undefined; name: string | undefined; sub: string | undefined }
    | undefined {
    const parts = pathname
      .split('/')
      .filter((p) => p !== '')
      .map(decodeURIComponent);
    let group: string;
    let version: string;
    let rest: string[];
    if (parts[0] === 'api' && parts.length >= 2) {
      group = '';
      version = parts[1]!;
      rest = parts.slice(2);
    } else if (parts[0] === 'apis' && parts.length >= 3) {
      group = parts[1]!;
      version = parts[2]!;
      rest = parts.slice(3);
    } else return undefined;
    let ns: string | undefined;
    if (rest[0] === 'namespaces' && rest.length >= 3) {
      ns = rest[1];
      rest = rest.slice(2);
    }
    const [plural, name, sub] = rest;
    if (plural === undefined) return undefined;
    const store = this.stores.get(`${group}/${plural}`);
    if (!store) return undefined;
    const d = store.def;
    if (version !== d.version && !(d.alsoServed ?? []).includes(version)) return undefined;
    if (!d.namespaced && ns !== undefined) return undefined;
    if (d.namespaced && ns === undefined && name !== undefined) return undefined;
    return { store, version, ns, name, sub };
  }

  private listBody(
    store: Store,
    version: string,
    ns: string | undefined,
    selector: Selector,
    fields: Selector,
  ): Record<string, unknown> {
    const builtIn = store.def.group !== 'proxy.otoroshi.io';
    const items = [...store.objects.values()]
      .filter((o) => (ns === undefined || o.metadata.namespace === ns) && matches(selector, o, fields))
      .sort((a, b) =>
        keyOf(a.metadata.namespace, a.metadata.name).localeCompare(keyOf(b.metadata.namespace, b.metadata.name)),
      )
      .map((o) => {
        const v = withVersion(o, store.def, version);
        if (builtIn) {
          delete v.kind;
          delete v.apiVersion;
        }
        return v;
      });
    return {
      kind: `${store.def.kind}List`,
      apiVersion: apiVersionOf(store.def, version),
      metadata: { resourceVersion: String(this.rv) },
      items,
    };
  }

  private startWatch(
    store: Store,
    version: string,
    ns: string | undefined,
    selector: Selector,
    fields: Selector,
    url: URL,
    res: http.ServerResponse,
  ): void {
    res.writeHead(200, { 'content-type': 'application/json', 'transfer-encoding': 'chunked' });
    res.flushHeaders();
    const w: WatchConn = {
      store,
      ns,
      selector,
      fields,
      version,
      bookmarks: url.searchParams.get('allowWatchBookmarks') === 'true',
      res,
    };
    const rvParam = url.searchParams.get('resourceVersion') ?? '';
    this.watches.add(w);
    res.on('close', () => this.endWatch(w));
    const timeout = Number(url.searchParams.get('timeoutSeconds') ?? '0');
    if (timeout > 0) {
      w.timer = setTimeout(() => this.endWatch(w), timeout * 1000);
      w.timer.unref();
    }
    if (rvParam === '' || rvParam === '0') {
      for (const o of store.objects.values()) {
        if ((ns === undefined || o.metadata.namespace === ns) && matches(selector, o, fields))
          this.writeEvent(w, { type: 'ADDED', object: withVersion(o, store.def, version) });
      }
      return;
    }
    const from = Number(rvParam);
    if (!Number.isFinite(from) || from < this.compactedRv) {
      this.writeEvent(w, {
        type: 'ERROR',
        object: status(410, 'Expired', `too old resource version: ${rvParam} (${this.compactedRv})`),
      });
      this.endWatch(w);
      return;
    }
    for (const ev of store.history) if (ev.rv > from) this.deliver(w, ev);
  }

  private deliver(w: WatchConn, ev: HistoryEvent): void {
    if (w.ns !== undefined && ev.object.metadata.namespace !== w.ns) return;
    const now = matches(w.selector, ev.object, w.fields);
    let type: string = ev.type;
    if (ev.type === 'MODIFIED') {
      const before = matches(w.selector, ev.old, w.fields);
      if (!before && !now) return;
      if (before && !now) type = 'DELETED';
      else if (!before && now) type = 'ADDED';
    } else if (!now) return;
    this.writeEvent(w, { type, object: withVersion(ev.object, w.store.def, w.version) });
  }

  private writeEvent(w: WatchConn, ev: { type: string; object: unknown }): void {
    if (!w.res.writableEnded) w.res.write(JSON.stringify(ev) + '\n');
  }

  private endWatch(w: WatchConn): void {
    if (!this.watches.delete(w)) return;
    if (w.timer) clearTimeout(w.timer);
    if (!w.res.writableEnded) w.res.end();
  }
}

function keyOf(ns: string | undefined, name: string): string {
  return `${ns ?? ''}/${name}`;
}

function apiVersionOf(d: ResourceDef, version: string): string {
  return d.group === '' ? version : `${d.group}/${version}`;
}

function withVersion(o: Obj, d: ResourceDef, version: string): Obj {
  const c = clone(o);
  c.apiVersion = apiVersionOf(d, version);
  c.kind = d.kind;
  return c;
}

function specOf(o: Obj): unknown {
  // what `generation` tracks: everything but metadata and status
  const { metadata: _m, status: _s, ...rest } = o;
  return rest;
}

function normaliseSecret(s: Store, o: Obj): void {
  if (s.def.kind !== 'Secret') return;
  const sd = o['stringData'];
  if (sd && typeof sd === 'object') {
    const data = { ...((o['data'] as Record<string, string> | undefined) ?? {}) };
    for (const [k, v] of Object.entries(sd as Record<string, string>))
      data[k] = Buffer.from(String(v)).toString('base64');
    o['data'] = data;
    delete o['stringData'];
  }
  if (o['type'] === undefined) o['type'] = 'Opaque';
}

async function readJson(req: http.IncomingMessage): Promise<unknown> {
  const chunks: Buffer[] = [];
  for await (const c of req) chunks.push(c as Buffer);
  const text = Buffer.concat(chunks).toString('utf8');
  if (text === '') return undefined;
  try {
    return JSON.parse(text);
  } catch {
    throw new HttpError(400, 'BadRequest', 'body is not JSON');
  }
}
