// `ipFiltering`: whitelist (when non-empty, the client must match it),
// then blacklist. Entries are exact addresses, CIDRs (`10.0.0.0/8`, IPv6 too) or wildcard
// patterns (`192.168.1.*`, `*` spans dots as in Otoroshi).
import { BlockList, isIP } from 'node:net';
import type { IpFiltering } from '../model/types.js';

export type IpMatcher = (ip: string) => boolean;

function matcher(entries: readonly string[]): IpMatcher {
  const list = new BlockList();
  const patterns: RegExp[] = [];
  for (const raw of entries) {
    const e = raw.trim();
    if (e === '') continue;
    if (e.includes('*')) {
      patterns.push(new RegExp(`^${e.replace(/[.+?^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*')}$`));
      continue;
    }
    const [addr, bits] = e.split('/');
    const family = isIP(addr ?? '');
    if (family === 0) continue; // not an address: never matches
    const type = family === 6 ? 'ipv6' : 'ipv4';
    if (bits === undefined) list.addAddress(addr as string, type);
    else {
      const n = Number(bits);
      if (Number.isInteger(n) && n >= 0 && n <= (family === 6 ? 128 : 32)) list.addSubnet(addr as string, n, type);
    }
  }
  return (ip) => {
    const family = isIP(ip);
    if (family !== 0 && list.check(ip, family === 6 ? 'ipv6' : 'ipv4')) return true;
    return patterns.some((re) => re.test(ip));
  };
}

/** `(ip) => allowed`, or undefined when the filtering lets everybody through. */
export function compileIpFilter(f: IpFiltering | undefined): IpMatcher | undefined {
  if (f === undefined || (f.whitelist.length === 0 && f.blacklist.length === 0)) return undefined;
  const white = f.whitelist.length > 0 ? matcher(f.whitelist) : undefined;
  const black = f.blacklist.length > 0 ? matcher(f.blacklist) : undefined;
  return (ip) => (white === undefined || white(ip)) && !(black?.(ip) ?? false);
}
