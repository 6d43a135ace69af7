// The traffic interception of an injected pod: iptables `nat` rules (the pod's own network
// namespace) that send the app's TCP through Envoy. Like Istio's init container:
//   inbound   every TCP connection to the pod → REDIRECT to the inbound port, except the excluded
//             ports (the inbound/outbound ports themselves, an operator's list such as a probe port);
//   outbound  every TCP connection the pod opens → REDIRECT to the outbound port, except Envoy's
//             own (uid), loopback destinations, DNS, and the control plane's xDS / ext_authz ports.
// Idempotent: the chains are flushed and re-created, so a restarted init container ends the same.

/** Uid (and gid) Envoy runs as in injected pods: its own connections are never redirected. */
export const SIDECAR_UID = 1337;

export interface InterceptionPorts {
  inboundPort: number;
  outboundPort: number;
  uid: number;
  /** Destination ports never redirected on the way out (control plane xDS and ext_authz). */
  excludeOutboundPorts: readonly number[];
  /** Local ports never redirected on the way in. */
  excludeInboundPorts: readonly number[];
}

const uniq = (xs: readonly number[]): number[] => [...new Set(xs)].sort((a, b) => a - b);

/** The iptables commands, in order (each one line, safe for `sh -c`: only numbers are interpolated). */
export function interceptionRules(p: InterceptionPorts): string[] {
  const nat = 'iptables -w -t nat';
  const inboundExcluded = uniq([p.inboundPort, p.outboundPort, ...p.excludeInboundPorts]);
  const outboundExcluded = uniq([53, ...p.excludeOutboundPorts]);
  return [
    // (re)create our chains, empty
    `${nat} -N OXDS_INBOUND 2>/dev/null || ${nat} -F OXDS_INBOUND`,
    `${nat} -N OXDS_OUTPUT 2>/dev/null || ${nat} -F OXDS_OUTPUT`,
    `${nat} -C PREROUTING -p tcp -j OXDS_INBOUND 2>/dev/null || ${nat} -A PREROUTING -p tcp -j OXDS_INBOUND`,
    `${nat} -C OUTPUT -p tcp -j OXDS_OUTPUT 2>/dev/null || ${nat} -A OUTPUT -p tcp -j OXDS_OUTPUT`,
    ...inboundExcluded.map((port) => `${nat} -A OXDS_INBOUND -p tcp --dport ${port} -j RETURN`),
    `${nat} -A OXDS_INBOUND -p tcp -j REDIRECT --to-ports ${p.inboundPort}`,
    `${nat} -A OXDS_OUTPUT -m owner --uid-owner ${p.uid} -j RETURN`,
    `${nat} -A OXDS_OUTPUT -d 127.0.0.0/8 -j RETURN`,
    ...outboundExcluded.map((port) => `${nat} -A OXDS_OUTPUT -p tcp --dport ${port} -j RETURN`),
    `${nat} -A OXDS_OUTPUT -p tcp -j REDIRECT --to-ports ${p.outboundPort}`,
  ];
}

/** The whole script of the init container (`sh -c`): stops at the first failing rule. */
export function interceptionScript(p: InterceptionPorts): string {
  return ['set -e', ...interceptionRules(p)].join('\n');
}
