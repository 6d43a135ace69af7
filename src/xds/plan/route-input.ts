// The descriptor fields the route builders read: the plan step hands them over, the builders see no model object.
import type { Descriptor } from '../../model/types.js';

/**
 * What the route builders read of a descriptor, taken from it in the plan step (plan/contribution.ts
 * `routeInputOf`): the builders see these fields only, never the whole model object.
 */
export type RouteInput = Pick<
  Descriptor,
  | 'id'
  | 'matchingHeaders'
  | 'forceHttps'
  | 'root'
  | 'stripPath'
  | 'overrideHost'
  | 'hostRewrite'
  | 'targets'
  | 'clientConfig'
  | 'loadBalancing'
  | 'additionalHeaders'
  | 'additionalHeadersOut'
  | 'missingOnlyHeadersIn'
  | 'missingOnlyHeadersOut'
  | 'removeHeadersIn'
  | 'removeHeadersOut'
  | 'xForwardedHeaders'
  | 'sendOtoroshiHeadersBack'
  | 'apiKeyConstraints'
  | 'ipFiltering'
  | 'cors'
  | 'gzip'
  | 'privatePatterns'
  | 'publicPatterns'
  | 'headersVerification'
  | 'readOnly'
  | 'detectApiKeySooner'
  | 'restrictions'
  | 'jwtVerifier'
>;
