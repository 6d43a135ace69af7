// The pure middle of the data flow: view → buildModel → translate → validate.
// Used by the server (then snapshot → cache → ADS) and by the `translate` / `validate` CLIs.
import type { BuildResult, ConfigError, ConfigView, Model, ObjectStatus, StoredObject } from './model/types.js';
import { buildModelSteps, prevalidateSpecs, type ModelSettings } from './model/build.js';
import { runSteps, type Steps } from './model/steps.js';
import { TranslateCache, encodedBytes, gatewayFirstSteps } from './xds/translate.js';
import { rejectedResource, validateKind } from './xds/validate.js';
import type { ProtoObject, ResourceKind } from '../proto/loader.js';
import { RESOURCE_SET_KEYS, type NodeType, type ResourceSet, type TranslateOptions } from './xds/types.js';

export interface CompiledSet {
  set: ResourceSet;
  /** Encoded bytes of every published resource object (validated, round-tripped). */
  bytes: WeakMap<ProtoObject, Uint8Array>;
}

export interface Compiled {
  model: Model;
  statuses: ObjectStatus[];
  envoy: CompiledSet;
  grpc: CompiledSet;
  grpcDomains: string[];
  /** Every problem: object statuses' errors, translation errors, Envoy validation failures. */
  errors: ConfigError[];
}

/**
 * Validates every resource against Envoy's PGV rules and a protobuf round trip. A failing
 * resource is not published; the failure is returned as an error naming it. Resources that
 * translate already validated (and encoded) are not validated again: their bytes are reused.
 */
export function validateSet(nodeType: NodeType, set: ResourceSet, errors: ConfigError[]): CompiledSet {
  const out: ResourceSet = { listeners: [], routes: [], clusters: [], endpoints: [], secrets: [] };
  const bytes = new WeakMap<ProtoObject, Uint8Array>();
  for (const kind of Object.keys(RESOURCE_SET_KEYS) as ResourceKind[]) {
    const key = RESOURCE_SET_KEYS[kind];
    for (const obj of set[key]) {
      const known = encodedBytes(obj);
      if (known) {
        out[key].push(obj);
        bytes.set(obj, known);
        continue;
      }
      const r = validateKind(kind, obj);
      if (r.ok) {
        out[key].push(obj);
        bytes.set(obj, r.bytes);
      } else errors.push(rejectedResource(nodeType, kind, obj, r.issues));
    }
  }
  return { set: out, bytes };
}

export { runSteps, runStepsYielding } from './model/steps.js';

/** Objects of a kind compiled ahead of the first build that meets the kind (WarmUp). */
const WARM_SAMPLE = 32;

/**
 * What a server does on the objects of each file as it is read, before its build: the model's
 * per-object checks (kept, so the build does not repeat them), and, the first time a kind is read, a
 * throw-away compile of a few objects of it, so that the build runs code already loaded and compiled
 * (schemas, protobuf types, validator plans, JIT) rather than paying for it after the parse.
 */
export class WarmUp {
  private readonly warmed = new Set<string>();
  private built = false;

  constructor(private readonly args: () => { settings: Partial<ModelSettings>; opts: Partial<TranslateOptions> }) {}

  /** After the first build: only the per-object checks go on (everything else is warm). */
  firstBuildDone(): void {
    this.built = true;
  }

  *steps(objects: readonly StoredObject[]): Steps {
    yield* prevalidateSpecs(objects);
    if (this.built) return;
    const fresh = objects.filter((o) => !this.warmed.has(String(o.object.kind))).slice(0, WARM_SAMPLE);
    if (fresh.length === 0) return;
    for (const o of fresh) this.warmed.add(String(o.object.kind));
    const { settings, opts } = this.args();
    try {
      yield* compileSteps({ objects: fresh, loadErrors: [] }, settings, opts);
    } catch {
      // Its result is dropped: the build proper reports whatever went wrong.
    }
  }
}

export function compile(
  view: ConfigView,
  settings: Partial<ModelSettings>,
  opts: Partial<TranslateOptions>,
  /** Runs between buildModel and translate (the CA stage: issues Certificate CRs, sets the CA bundle). */
  afterModel?: (built: BuildResult) => void,
  /** Memos of the previous compile (the server keeps one); without it, a cold translate. */
  cache?: TranslateCache,
): Compiled {
  return runSteps(compileSteps(view, settings, opts, afterModel, cache));
}

/**
 * `compile` as steps: the generator pauses between its stages (model, translate, each node type's
 * validation) and within the model's and translate's loops (every few hundred objects), so that a
 * caller can let the event loop run there (the server's rebuilds) and nothing else. Nothing is published
 * by it: what it returns is used when it is done.
 */
export function* compileSteps(
  view: ConfigView,
  settings: Partial<ModelSettings>,
  opts: Partial<TranslateOptions>,
  afterModel?: (built: BuildResult) => void,
  cache?: TranslateCache,
): Steps<Compiled> {
  const first = yield* compileGatewayFirstSteps(view, settings, opts, afterModel, cache);
  return yield* first.rest();
}

/** A compile whose Envoy set is done (validated, final) while its proxyless gRPC part is still to do. */
export interface GatewayFirstCompiled {
  model: Model;
  /** Object statuses, with the translation problems: final (the rest adds no translation problem). */
  statuses: ObjectStatus[];
  envoy: CompiledSet;
  /** Completes the compile (the gRPC resources and their validation): the whole Compiled. */
  rest(): Steps<Compiled>;
}

/**
 * `compileSteps` in two parts, the Envoy set first (see gatewayFirstSteps): a server publishes it
 * before it translates for proxyless gRPC clients. `rest` must run before the next compile on `cache`.
 */
export function* compileGatewayFirstSteps(
  view: ConfigView,
  settings: Partial<ModelSettings>,
  opts: Partial<TranslateOptions>,
  afterModel?: (built: BuildResult) => void,
  cache?: TranslateCache,
): Steps<GatewayFirstCompiled> {
  const built: BuildResult = yield* buildModelSteps(view, settings);
  afterModel?.(built);
  yield;
  const errors: ConfigError[] = [];
  for (const s of built.statuses) errors.push(...s.errors);
  const first = yield* gatewayFirstSteps(built.model, opts, cache ?? new TranslateCache());
  errors.push(...first.errors);
  const statuses = withTranslateErrors(built.statuses, first.errors);
  yield;
  const envoy = validateSet('envoy', first.envoy, errors);
  function* rest(): Steps<Compiled> {
    const { output } = yield* first.rest();
    yield;
    const grpc = validateSet('grpc', output.grpc, errors);
    return { model: built.model, statuses, envoy, grpc, grpcDomains: output.grpcDomains, errors };
  }
  return { model: built.model, statuses, envoy, rest };
}

/** Object statuses with the translation problems of each object (an error makes it invalid: it is not served). */
export function withTranslateErrors(statuses: readonly ObjectStatus[], errors: readonly ConfigError[]): ObjectStatus[] {
  const byObject = new Map<string, ConfigError[]>();
  const key = (kind: string | undefined, ns: string | undefined, name: string | undefined): string =>
    `${kind ?? ''}\u0000${ns ?? ''}\u0000${name ?? ''}`;
  for (const e of errors) {
    const k = key(e.kind, e.namespace, e.name);
    byObject.set(k, [...(byObject.get(k) ?? []), e]);
  }
  return statuses.map((s) => {
    const extra = byObject.get(key(s.kind, s.namespace, s.name));
    if (!extra) return s;
    return {
      ...s,
      errors: [...s.errors, ...extra],
      state: extra.some((e) => e.severity === 'error') ? 'invalid' : s.state,
    };
  });
}

/** "file:doc Kind ns/name field: message" — one line per problem, for humans and CI logs. */
export function formatError(e: ConfigError): string {
  const where = e.file !== undefined ? `${e.file}${e.doc !== undefined ? `#${e.doc}` : ''}` : '-';
  const what = e.kind ? `${e.kind} ${e.namespace ? `${e.namespace}/` : ''}${e.name ?? ''}` : '';
  const field = e.field ? ` ${e.field}` : '';
  const subject = `${what}${field}`.trim();
  const severity = e.severity === 'warning' || e.severity === 'notice' ? e.severity : 'error';
  return `${severity} ${e.code} ${where}${subject !== '' ? ` ${subject}` : ''}: ${e.message}`
    .replace(/\s+/g, ' ')
    .trim();
}
