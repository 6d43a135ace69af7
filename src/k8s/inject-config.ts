// The injection settings a server's Config gives (flags --sidecar-*, --xds-token-audience).
import type { Config } from '../config.js';
import { parseHostPort } from '../envoy/bootstrap.js';
import { INJECT_DEFAULTS, type InjectOptions } from './inject.js';

/** `ns`: the control plane's namespace (the default xDS address is its Service there). */
export function injectOptionsFrom(config: Config, ns: string): InjectOptions {
  const xdsAddress = config.sidecarXdsAddress ?? `otoroshi-xds-xds.${ns}.svc:18000`;
  const parsed = parseHostPort(xdsAddress);
  const ports = [
    typeof parsed === 'string' ? undefined : parsed.port,
    config.xdsPort,
    config.envoyAuthzPort ?? config.authzPort,
    config.authzPort,
  ].filter((p): p is number => p !== undefined && p > 0);
  return {
    envoyImage: config.sidecarEnvoyImage,
    initImage: config.sidecarInitImage,
    xdsAddress,
    controlPlanePorts: [...new Set(ports)].sort((a, b) => a - b),
    tokenAudience: config.xdsTokenAudience,
    tokenExpirationSeconds: INJECT_DEFAULTS.tokenExpirationSeconds,
    inboundPort: INJECT_DEFAULTS.inboundPort,
    outboundPort: INJECT_DEFAULTS.outboundPort,
  };
}
