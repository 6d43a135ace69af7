// TcpService CRD → TcpServiceModel.
import { isIP } from 'node:net';
import type { TcpServiceModel, TcpTarget, StoredObject } from './types.js';
import { asObject, bool, isObject, num, str, type JsonObject, type Problems } from './problems.js';
import { crdEntityId, namespaceOf } from './ids.js';

function tcpTarget(o: JsonObject, field: string, p: Problems): TcpTarget | undefined {
  const host = str(o, 'host');
  if (host === undefined || host === '') {
    p.error('OXDS_MISSING_FIELD', 'a TCP target needs a host', `${field}.host`);
    return undefined;
  }
  const ip = str(o, 'ip');
  if (ip !== undefined && ip !== '' && isIP(ip) === 0) {
    p.error('OXDS_INVALID_TARGET', `ip ${JSON.stringify(ip)} is not an IP address`, `${field}.ip`);
    return undefined;
  }
  return {
    host,
    ...(ip !== undefined && ip !== '' ? { ip } : {}),
    port: num(o, 'port') ?? 8080,
    tls: bool(o, 'tls', false),
  };
}

function tlsMode(v: string | undefined): TcpServiceModel['tls'] {
  const s = (v ?? 'Disabled').toLowerCase();
  return s === 'enabled' ? 'Enabled' : s === 'passthrough' ? 'PassThrough' : 'Disabled';
}

function clientAuthOf(v: string | undefined): TcpServiceModel['clientAuth'] {
  const s = (v ?? 'None').toLowerCase();
  return s === 'want' ? 'Want' : s === 'need' ? 'Need' : 'None';
}

/** A schema-valid TcpService CR → model; undefined when it has errors. */
export function buildTcpService(so: StoredObject, p: Problems): TcpServiceModel | undefined {
  const obj = so.object;
  const spec = asObject(obj.spec);
  const sni = asObject(spec['sni']);
  const fwd = isObject(sni['forwardsTo']) ? tcpTarget(sni['forwardsTo'], 'spec.sni.forwardsTo', p) : undefined;
  const rules: TcpServiceModel['rules'] = [];
  (Array.isArray(spec['rules']) ? spec['rules'] : []).forEach((r, i) => {
    const ro = asObject(r);
    const targets: TcpTarget[] = [];
    (Array.isArray(ro['targets']) ? ro['targets'] : []).forEach((t, j) => {
      const tt = tcpTarget(asObject(t), `spec.rules[${i}].targets[${j}]`, p);
      if (tt) targets.push(tt);
    });
    if (targets.length === 0) p.warn('OXDS_MISSING_FIELD', 'rule without targets: ignored', `spec.rules[${i}].targets`);
    else rules.push({ domain: str(ro, 'domain') ?? '*', targets });
  });
  const m: TcpServiceModel = {
    id: crdEntityId(obj),
    name: str(spec, 'name') ?? obj.metadata.name,
    sourceKey: so.key,
    namespace: namespaceOf(obj),
    origin: so.origin,
    enabled: bool(spec, 'enabled', true),
    port: num(spec, 'port') ?? 0,
    interface: str(spec, 'interface') ?? '0.0.0.0',
    tls: tlsMode(str(spec, 'tls')),
    clientAuth: clientAuthOf(str(spec, 'clientAuth')),
    sni: {
      enabled: bool(sni, 'enabled', false),
      forwardIfNoMatch: bool(sni, 'forwardIfNoMatch', false),
      ...(fwd ? { forwardsTo: fwd } : {}),
    },
    rules,
  };
  if (rules.length === 0 && !(m.sni.enabled && m.sni.forwardIfNoMatch && fwd))
    p.error('OXDS_MISSING_FIELD', 'a TcpService needs rules with targets', 'spec.rules');
  if (m.clientAuth !== 'None' && m.tls !== 'Enabled')
    p.warn('OXDS_INVALID_FIELD', 'clientAuth only applies with tls: Enabled: ignored', 'spec.clientAuth');
  if (isIP(m.interface) === 0)
    p.error('OXDS_INVALID_FIELD', `interface ${JSON.stringify(m.interface)} is not an IP address`, 'spec.interface');
  return p.hasErrors ? undefined : m;
}
