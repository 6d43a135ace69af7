// A network namespace joined to this one by a veth pair, with a Kubernetes-Service-like virtual IP
// inside it: iptables DNAT in the namespace's nat OUTPUT chain spreads new connections to the VIP
// over "endpoints" on the host side of the pair, as kube-proxy does in iptables mode. Processes
// started in the namespace (Envoys) reach the VIP; this process reaches them on the namespace's
// veth address. Needs root, `ip` and `iptables`.
import { execFileSync, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

/** Why namespaces with iptables cannot be made here, or undefined when they can. */
export function netnsMissing(): string | undefined {
  if (process.getuid?.() !== 0) return 'needs root (ip netns, iptables)';
  for (const [cmd, args] of [
    ['ip', ['-V']],
    ['iptables', ['-V']],
  ] as const) {
    const r = spawnSync(cmd, args, { encoding: 'utf8' });
    if (r.error || r.status !== 0) return `\`${cmd}\` is not installed (apt-get install iproute2 iptables)`;
  }
  return undefined;
}

export interface ServiceEndpoint {
  address: string;
  port: number;
}

export interface ServiceNetns {
  name: string;
  /** The namespace side of the veth pair (what this process dials to reach processes inside). */
  nsAddress: string;
  /** The host side of the pair (backends bind it). */
  hostAddress: string;
  /** The virtual IP: only routed inside the namespace, never bound by anything. */
  vip: string;
  /** Extra host-side addresses, one per replica ("pod IPs"). */
  podAddresses: string[];
  /**
   * (Re)writes the VIP's rules: `port` → `endpoints`, round robin over new connections
   * (`statistic --mode nth`: deterministic, where kube-proxy uses `--mode random`).
   */
  setService(port: number, endpoints: readonly ServiceEndpoint[]): void;
  /** A file to use as the Envoy binary: runs `bin` inside the namespace. */
  wrap(bin: string): string;
  destroy(): void;
}

function run(args: string[]): void {
  execFileSync(args[0]!, args.slice(1), { stdio: ['ignore', 'ignore', 'pipe'] });
}

/** A namespace `oxds-<tag>` on 10.213.<octet>.0/24 with `pods` host-side addresses. */
export function createServiceNetns(tag: string, octet: number, pods: number): ServiceNetns {
  const name = `oxds-${tag}`;
  const hostIf = `ox${tag}h`.slice(0, 15);
  const nsIf = `ox${tag}n`.slice(0, 15);
  const net = `10.213.${octet}`;
  const hostAddress = `${net}.1`;
  const nsAddress = `${net}.2`;
  const podAddresses = Array.from({ length: pods }, (_, i) => `${net}.${11 + i}`);
  const vip = `10.96.${octet}.10`;
  const chainsByPort = new Map<number, string>();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'oxds-netns-'));
  const ns = (...a: string[]): void => run(['ip', 'netns', 'exec', name, ...a]);
  const removeNet = (): void => {
    spawnSync('ip', ['netns', 'del', name]);
    spawnSync('ip', ['link', 'del', hostIf]);
  };
  const destroy = (): void => {
    removeNet();
    fs.rmSync(dir, { recursive: true, force: true });
  };
  removeNet(); // left over from a killed run with the same tag
  try {
    run(['ip', 'netns', 'add', name]);
    run(['ip', 'link', 'add', hostIf, 'type', 'veth', 'peer', 'name', nsIf]);
    run(['ip', 'link', 'set', nsIf, 'netns', name]);
    for (const a of [hostAddress, ...podAddresses]) run(['ip', 'addr', 'add', `${a}/24`, 'dev', hostIf]);
    run(['ip', 'link', 'set', hostIf, 'up']);
    ns('ip', 'addr', 'add', `${nsAddress}/24`, 'dev', nsIf);
    ns('ip', 'link', 'set', nsIf, 'up');
    ns('ip', 'link', 'set', 'lo', 'up');
    // The VIP is routed out of the veth (as a ClusterIP is routed to the node's default gateway);
    // DNAT in OUTPUT rewrites it before it leaves.
    ns('ip', 'route', 'add', 'default', 'via', hostAddress);
  } catch (e) {
    destroy();
    throw e;
  }
  return {
    name,
    nsAddress,
    hostAddress,
    vip,
    podAddresses,
    setService(port, endpoints) {
      let chain = chainsByPort.get(port);
      if (chain === undefined) {
        chain = `OXDS-SVC-${port}`;
        chainsByPort.set(port, chain);
        ns('iptables', '-t', 'nat', '-N', chain);
        ns(
          'iptables',
          '-t',
          'nat',
          '-A',
          'OUTPUT',
          '-d',
          `${vip}/32`,
          '-p',
          'tcp',
          '--dport',
          String(port),
          '-j',
          chain,
        );
      }
      ns('iptables', '-t', 'nat', '-F', chain);
      endpoints.forEach((e, i) => {
        const left = endpoints.length - i;
        const match = left > 1 ? ['-m', 'statistic', '--mode', 'nth', '--every', String(left), '--packet', '0'] : [];
        ns(
          'iptables',
          '-t',
          'nat',
          '-A',
          chain!,
          '-p',
          'tcp',
          ...match,
          '-j',
          'DNAT',
          '--to-destination',
          `${e.address}:${e.port}`,
        );
      });
    },
    wrap(bin) {
      const file = path.join(dir, `in-${name}`);
      fs.writeFileSync(file, `#!/bin/sh\nexec ip netns exec ${name} ${JSON.stringify(bin)} "$@"\n`, { mode: 0o755 });
      return file;
    },
    destroy,
  };
}
