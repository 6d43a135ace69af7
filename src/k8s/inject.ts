// Sidecar injection: the mutating admission webhook's answer for Pods labelled
// `otoroshi.io/sidecar: inject` (Otoroshi's label). The JSON patch adds, to the pod:
//   - init container `otoroshi-xds-bootstrap`: `otoroshi-xds bootstrap sidecar ...` writes the Envoy
//     bootstrap into a shared emptyDir, with the pod's projected ServiceAccount token (audience
//     --xds-token-audience) as the xDS credential (`--xds-token`, sent as `authorization: Bearer`)
//     the control plane checks with TokenReview;
//   - init container `otoroshi-xds-iptables` (NET_ADMIN): REDIRECT of inbound TCP to the inbound
//     port and of outbound TCP to the outbound port, except Envoy's own uid, loopback, DNS and the
//     control plane's xDS / ext_authz ports (src/k8s/inject-iptables.ts);
//   - container `otoroshi-xds-envoy` (uid 1337) started from that bootstrap;
//   - volumes: the projected token, the bootstrap emptyDir.
// Otoroshi's other sidecar annotations are mapped or reported as admission warnings (kubectl
// prints them); see docs/mesh-control-plane.md.
import { isObject } from '../model/problems.js';
import { admissionRequest, type ReviewResult } from './admission.js';
import { interceptionScript, SIDECAR_UID, type InterceptionPorts } from './inject-iptables.js';

export const INJECT_LABEL = 'otoroshi.io/sidecar';
export const INJECTED_ANNOTATION = 'otoroshi.io/sidecar-injected';
export const ENVOY_CONTAINER = 'otoroshi-xds-envoy';
export const BOOTSTRAP_CONTAINER = 'otoroshi-xds-bootstrap';
export const IPTABLES_CONTAINER = 'otoroshi-xds-iptables';
export const TOKEN_VOLUME = 'otoroshi-xds-token';
export const BOOTSTRAP_VOLUME = 'otoroshi-xds-bootstrap';
export const TOKEN_DIR = '/var/run/secrets/otoroshi-xds';
export const BOOTSTRAP_DIR = '/etc/otoroshi-xds';
/** Extra inbound ports (comma-separated) left alone by the interception, e.g. a kubelet probe port. */
export const EXCLUDE_INBOUND_ANNOTATION = 'otoroshi.io/sidecar-exclude-inbound-ports';

export interface InjectOptions {
  envoyImage: string;
  initImage: string;
  /** host:port the sidecars dial for xDS. */
  xdsAddress: string;
  /** Ports of the control plane the interception never redirects (xDS, ext_authz). */
  controlPlanePorts: readonly number[];
  tokenAudience: string;
  /** Lifetime asked for the projected token (the kubelet rotates the file at 80%). */
  tokenExpirationSeconds: number;
  inboundPort: number;
  outboundPort: number;
}

export const INJECT_DEFAULTS = {
  inboundPort: 15006,
  outboundPort: 15001,
  tokenExpirationSeconds: 86_400,
} as const;

export type JsonPatchOp = { op: 'add'; path: string; value: unknown };

/** Otoroshi's sidecar annotations and what becomes of them in the Envoy design. */
export const OTOROSHI_ANNOTATIONS: Readonly<Record<string, string>> = {
  'otoroshi.io/sidecar-apikey':
    "supported: the control plane reads it from the Pod; outbound calls to mesh destinations carry that ApiKey's " +
    'credentials',
  'otoroshi.io/sidecar-backend-cert':
    'not supported (ignored): the inbound listener serves the workload SPIFFE certificate from our CA over SDS',
  'otoroshi.io/sidecar-client-cert':
    'not supported (ignored): outbound mTLS uses the workload SPIFFE certificate from our CA over SDS',
  'otoroshi.io/expected-dn':
    'not supported (ignored): callers are checked by their SPIFFE id (peer certificate from our CA), not by a DN',
  'otoroshi.io/token-secret':
    "not supported (ignored): no Otoroshi exchange token between sidecars; mTLS with SPIFFE ids replaces Otoroshi's " +
    'challenge',
};

const escapePointer = (s: string): string => s.replace(/~/g, '~0').replace(/\//g, '~1');

const strMap = (v: unknown): Record<string, string> => {
  if (!isObject(v)) return {};
  const out: Record<string, string> = {};
  for (const [k, x] of Object.entries(v)) if (typeof x === 'string') out[k] = x;
  return out;
};

const list = (v: unknown): unknown[] => (Array.isArray(v) ? v : []);

/** The first declared containerPort of the first container (Otoroshi's rule), if any. */
export function appPort(spec: Record<string, unknown>): number | undefined {
  const c = list(spec['containers'])[0];
  const p = isObject(c) ? list(c['ports'])[0] : undefined;
  const n = isObject(p) ? p['containerPort'] : undefined;
  return typeof n === 'number' && Number.isInteger(n) && n > 0 && n < 65536 ? n : undefined;
}

/** `a, 8080,x` → the valid ports, and the invalid entries. */
export function parsePorts(s: string): { ports: number[]; invalid: string[] } {
  const ports: number[] = [];
  const invalid: string[] = [];
  for (const x of s.split(',').map((y) => y.trim())) {
    if (x === '') continue;
    const n = Number(x);
    if (/^\d+$/.test(x) && n > 0 && n < 65536) ports.push(n);
    else invalid.push(x);
  }
  return { ports, invalid };
}

/**
 * The bootstrap init container: `otoroshi-xds bootstrap sidecar` into the shared emptyDir. A shell
 * reads the token file (the command takes the token itself); the flags come as "$@", never
 * interpolated into the script.
 */
function bootstrapContainer(o: InjectOptions, sa: string, port: number | undefined) {
  const script = `exec otoroshi-xds "$@" --xds-token "$(cat ${TOKEN_DIR}/token)" > ${BOOTSTRAP_DIR}/envoy.yaml`;
  const args = [
    'bootstrap',
    'sidecar',
    '--namespace',
    '$(POD_NAMESPACE)',
    '--service-account',
    sa,
    ...(port !== undefined ? ['--app-port', String(port)] : []),
    '--inbound-port',
    String(o.inboundPort),
    '--inbound-address',
    '0.0.0.0',
    '--outbound-port',
    String(o.outboundPort),
    '--xds-address',
    o.xdsAddress,
    '--node-id',
    '$(POD_NAME).$(POD_NAMESPACE)',
  ];
  const env: Array<Record<string, unknown>> = [
    { name: 'POD_NAME', valueFrom: { fieldRef: { fieldPath: 'metadata.name' } } },
    { name: 'POD_NAMESPACE', valueFrom: { fieldRef: { fieldPath: 'metadata.namespace' } } },
  ];
  return {
    name: BOOTSTRAP_CONTAINER,
    image: o.initImage,
    command: ['sh', '-c', script, BOOTSTRAP_CONTAINER],
    args,
    env,
    volumeMounts: [
      { name: TOKEN_VOLUME, mountPath: TOKEN_DIR, readOnly: true },
      { name: BOOTSTRAP_VOLUME, mountPath: BOOTSTRAP_DIR },
    ],
    securityContext: {
      runAsUser: SIDECAR_UID,
      runAsGroup: SIDECAR_UID,
      runAsNonRoot: true,
      allowPrivilegeEscalation: false,
      capabilities: { drop: ['ALL'] },
    },
  };
}

function iptablesContainer(o: InjectOptions, ports: InterceptionPorts) {
  return {
    name: IPTABLES_CONTAINER,
    image: o.initImage,
    command: ['sh', '-c', interceptionScript(ports)],
    securityContext: {
      runAsUser: 0,
      runAsNonRoot: false,
      allowPrivilegeEscalation: false,
      capabilities: { add: ['NET_ADMIN', 'NET_RAW'], drop: ['ALL'] },
    },
  };
}

function envoyContainer(o: InjectOptions) {
  return {
    name: ENVOY_CONTAINER,
    image: o.envoyImage,
    args: ['-c', `${BOOTSTRAP_DIR}/envoy.yaml`, '--log-level', 'warn'],
    ports: [{ name: 'oxds-inbound', containerPort: o.inboundPort, protocol: 'TCP' }],
    volumeMounts: [{ name: BOOTSTRAP_VOLUME, mountPath: BOOTSTRAP_DIR, readOnly: true }],
    securityContext: {
      runAsUser: SIDECAR_UID,
      runAsGroup: SIDECAR_UID,
      runAsNonRoot: true,
      allowPrivilegeEscalation: false,
      readOnlyRootFilesystem: true,
      capabilities: { drop: ['ALL'] },
    },
  };
}

function volumes(o: InjectOptions) {
  return [
    {
      name: TOKEN_VOLUME,
      projected: {
        sources: [
          {
            serviceAccountToken: {
              audience: o.tokenAudience,
              expirationSeconds: o.tokenExpirationSeconds,
              path: 'token',
            },
          },
        ],
      },
    },
    { name: BOOTSTRAP_VOLUME, emptyDir: { medium: 'Memory' } },
  ];
}

/** `add` ops appending `values` to the array at `path` (creating it when the pod has none). */
function appendOps(pod: Record<string, unknown>, path: string, values: unknown[]): JsonPatchOp[] {
  const parts = path.split('/').slice(1);
  let cur: unknown = pod;
  for (const p of parts) cur = isObject(cur) ? cur[p] : undefined;
  if (!Array.isArray(cur)) return [{ op: 'add', path, value: values }];
  return values.map((value) => ({ op: 'add' as const, path: `${path}/-`, value }));
}

export type InjectResult =
  | { inject: false; reason: string }
  | { inject: true; patch: JsonPatchOp[]; warnings: string[] }
  | { inject: false; deny: string };

/** What to do with one Pod (the object of the review): pure. */
export function injectSidecar(pod: Record<string, unknown>, o: InjectOptions): InjectResult {
  const meta = isObject(pod['metadata']) ? pod['metadata'] : {};
  const spec = isObject(pod['spec']) ? pod['spec'] : {};
  const labels = strMap(meta['labels']);
  const annotations = strMap(meta['annotations']);
  if (labels[INJECT_LABEL] !== 'inject') return { inject: false, reason: `no label ${INJECT_LABEL}: inject` };
  const names = [...list(spec['containers']), ...list(spec['initContainers'])].map((c) =>
    isObject(c) ? c['name'] : undefined,
  );
  if (annotations[INJECTED_ANNOTATION] !== undefined || names.includes(ENVOY_CONTAINER))
    return { inject: false, reason: 'already injected' };
  if (spec['hostNetwork'] === true)
    return {
      inject: false,
      deny: `${INJECT_LABEL}: inject on a hostNetwork pod: the interception would redirect the node's traffic`,
    };
  const warnings: string[] = [];
  for (const [k, what] of Object.entries(OTOROSHI_ANNOTATIONS))
    if (annotations[k] !== undefined) warnings.push(`${k}: ${what}`);
  const excluded = parsePorts(annotations[EXCLUDE_INBOUND_ANNOTATION] ?? '');
  if (excluded.invalid.length > 0)
    return {
      inject: false,
      deny:
        `metadata.annotations[${EXCLUDE_INBOUND_ANNOTATION}]: not a port: ` +
        excluded.invalid.map((x) => JSON.stringify(x)).join(', '),
    };
  const sa =
    typeof spec['serviceAccountName'] === 'string' && spec['serviceAccountName'] !== ''
      ? spec['serviceAccountName']
      : 'default';
  const port = appPort(spec);
  if (port === undefined)
    warnings.push(
      `${INJECT_LABEL}: the first container declares no containerPort: the sidecar has no inbound application port`,
    );
  if (port === o.inboundPort || port === o.outboundPort)
    return {
      inject: false,
      deny:
        `spec.containers[0].ports[0].containerPort: ${port} is the sidecar's ` +
        `${port === o.inboundPort ? 'inbound' : 'outbound'} port`,
    };
  const ports: InterceptionPorts = {
    inboundPort: o.inboundPort,
    outboundPort: o.outboundPort,
    uid: SIDECAR_UID,
    excludeOutboundPorts: [...o.controlPlanePorts],
    excludeInboundPorts: excluded.ports,
  };
  const patch: JsonPatchOp[] = [
    ...appendOps(pod, '/spec/initContainers', [bootstrapContainer(o, sa, port), iptablesContainer(o, ports)]),
    ...appendOps(pod, '/spec/containers', [envoyContainer(o)]),
    ...appendOps(pod, '/spec/volumes', volumes(o)),
    isObject(meta['annotations'])
      ? { op: 'add', path: `/metadata/annotations/${escapePointer(INJECTED_ANNOTATION)}`, value: 'true' }
      : { op: 'add', path: '/metadata/annotations', value: { [INJECTED_ANNOTATION]: 'true' } },
  ];
  return { inject: true, patch, warnings };
}

/** Answers one AdmissionReview (v1) of the mutating webhook. Malformed input → `ok: false`. */
export function reviewInjection(body: unknown, o: InjectOptions): ReviewResult {
  const a = admissionRequest(body);
  if (!a.ok) return a;
  const { req, answer } = a;
  const kind = isObject(req['kind']) ? req['kind'] : {};
  if (req['operation'] !== 'CREATE' || kind['kind'] !== 'Pod' || (kind['group'] ?? '') !== '')
    return answer({ allowed: true });
  const pod = req['object'];
  if (!isObject(pod) || !isObject(pod['spec'])) return { ok: false, error: 'request.object: expected a Pod' };
  const r = injectSidecar(pod, o);
  if ('deny' in r) return answer({ allowed: false, status: { code: 400, reason: 'BadRequest', message: r.deny } });
  if (!r.inject) return answer({ allowed: true });
  return answer({
    allowed: true,
    patchType: 'JSONPatch',
    patch: Buffer.from(JSON.stringify(r.patch)).toString('base64'),
    ...(r.warnings.length > 0 ? { warnings: r.warnings } : {}),
  });
}
