// Small shared value builders (durations, wrappers, config sources, addresses, headers).
// Builders return the generated message types of proto/envoy-types.ts (see proto/README.md).
import type {
  envoy_config_core_v3_Address as Address,
  envoy_config_core_v3_ConfigSource as ConfigSource,
  envoy_config_core_v3_HeaderValueOption as HeaderValueOption,
  envoy_config_core_v3_HeaderValueOption_HeaderAppendAction as HeaderAppendAction,
  google_protobuf_Duration as Duration,
} from '../../../proto/envoy-types.js';
import { frozen } from '../shapes.js';

/** google.protobuf.Duration from milliseconds (nanos only when non-zero). */
export function duration(ms: number): Duration {
  const whole = Math.max(0, Math.floor(ms));
  const seconds = Math.floor(whole / 1000);
  const nanos = (whole % 1000) * 1_000_000;
  return nanos === 0 ? { seconds } : { seconds, nanos };
}

const DURATIONS = new Map<number, Duration>();

/**
 * duration(ms) as one frozen object per value, for fields many resources share (cluster connect
 * timeouts, route timeouts). At most 1,024 values are kept.
 */
export function sharedDuration(ms: number): Duration {
  let d = DURATIONS.get(ms);
  if (d === undefined) {
    if (DURATIONS.size >= 1024) DURATIONS.clear();
    d = Object.freeze(duration(ms));
    DURATIONS.set(ms, d);
  }
  return d;
}

/** A wrapper (UInt32Value, BoolValue, ...). */
export function wrapped<T>(value: T): { value: T } {
  return { value };
}

/** ConfigSource: over the ADS stream, v3. */
export function adsConfigSource(): ConfigSource {
  return { ads: {}, resourceApiVersion: 'V3' };
}

/** adsConfigSource() as one frozen object, for the resources that each carry one (clusters, api_listeners). */
export const SHARED_ADS_CONFIG_SOURCE: ConfigSource = frozen(adsConfigSource());

export function socketAddress(address: string, port: number): Address {
  return { socketAddress: { address, portValue: port } };
}

/** HeaderValueOption. */
export function headerValue(
  key: string,
  value: string,
  appendAction: Extract<HeaderAppendAction, 'OVERWRITE_IF_EXISTS_OR_ADD' | 'ADD_IF_ABSENT'>,
): HeaderValueOption {
  return { header: { key, value }, appendAction };
}

/** Code-point order, never locale order: output must not depend on the machine. */
export function byString(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

export function sortedBy<T>(items: readonly T[], key: (t: T) => string): T[] {
  return [...items].sort((a, b) => byString(key(a), key(b)));
}
