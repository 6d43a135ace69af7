// buildModel: ConfigView → Model + one ObjectStatus per object. Pure, deterministic, never throws.
import type { BuildResult, ConfigView } from './types.js';
import { DEFAULT_SETTINGS, type ModelSettings } from './descriptor.js';
import {
  apiKeys,
  certificateCrs,
  checkShapes,
  claimDescriptors,
  crdDescriptors,
  descriptorCertRefs,
  globalConfigs,
  ingresses,
  jwtVerifiers,
  meshCertificate,
  kubeObjects,
  modelOf,
  newBuild,
  secrets,
  serviceGroups,
  statusesOf,
  tcpServices,
} from './processors.js';
import { runSteps, type Steps } from './steps.js';

export { loadErrorStatuses, prevalidateSpecs } from './processors.js';

export type { ModelSettings } from './descriptor.js';
export { DEFAULT_SETTINGS } from './descriptor.js';
export {
  OTOROSHI_GROUP,
  OTOROSHI_KINDS,
  OTOROSHI_UNSERVED_KINDS,
  OTOROSHI_VERSIONS,
  classify,
  unservedKind,
} from './kinds.js';

/**
 * Build the model. Every object of the view gets exactly one ObjectStatus; documents that never
 * became objects (view.loadErrors) get one status each too, keyed `file:<path>#<doc>` (or
 * `load:<n>` without a file), state `invalid`. One processor per object kind, in dependency order
 * (src/model/processors.ts).
 */
export function buildModel(view: ConfigView, settings?: Partial<ModelSettings>): BuildResult {
  return runSteps(buildModelSteps(view, settings));
}

/** `buildModel` as steps: it pauses between processors and every few hundred objects of the long loops. */
export function* buildModelSteps(view: ConfigView, settings?: Partial<ModelSettings>): Steps<BuildResult> {
  const s: ModelSettings = { ...DEFAULT_SETTINGS, ...(settings ?? {}) };
  const b = newBuild(view, s);
  yield;
  yield* checkShapes(b);
  kubeObjects(b);
  secrets(b);
  certificateCrs(b);
  globalConfigs(b);
  tcpServices(b);
  serviceGroups(b);
  jwtVerifiers(b);
  yield;
  yield* crdDescriptors(b);
  yield* ingresses(b);
  descriptorCertRefs(b);
  yield;
  claimDescriptors(b);
  yield* apiKeys(b);
  meshCertificate(b);
  yield;
  return { model: modelOf(b), statuses: statusesOf(b, view) };
}
