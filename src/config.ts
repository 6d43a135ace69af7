import net from 'node:net';
import { createRequire } from 'node:module';
import type { ServerCredentials } from '@grpc/grpc-js';
import type { TranslateOptions } from './xds/types.js';
import type { ModelSettings } from './model/descriptor.js';

// Flags + environment → one validated, frozen Config. Every flag has an OXDS_* env twin.

export interface Config {
  /** Directory of YAML objects (the embedded default source). */
  configDir: string;
  /** Address the control plane binds (127.0.0.1 locally; 0.0.0.0 in a cluster). */
  host: string;
  xdsPort: number;
  authzPort: number;
  adminPort: number;
  /** Ports of the Envoy gateway listeners we generate. */
  envoyHttpPort: number;
  envoyHttpsPort: number;
  /** Address the generated Envoy listeners bind. */
  envoyListenAddress: string;
  logLevel: 'trace' | 'debug' | 'info' | 'warn' | 'error' | 'fatal' | 'silent';
  /** Debounce of config changes: quiet period and maximum delay (ms). */
  debounceMs: number;
  debounceMaxMs: number;
  /** How long a removed cluster is still served (make-before-break), ms. */
  clusterGraceMs: number;
  /** Max resource names one xDS request may carry / one stream may subscribe to, per type. */
  xdsMaxNames: number;
  /** CA: user-provided signing CA (PEM cert chain + key) and root; generated in dataDir when unset. */
  caCert?: string;
  caKey?: string;
  caRootCert?: string;
  /** SPIFFE trust domain of workload certificates. */
  trustDomain: string;
  /** Lifetime of workload (sidecar) certificates, ms. */
  workloadCertTtlMs: number;
  /** Quota store: Redis URL (in-memory when unset), behaviour when it is down, calendar time zone. */
  redisUrl?: string;
  /** Per-command timeout of the quota store (ms): a slower answer counts as Redis down. */
  redisCommandTimeoutMs: number;
  quotaFailMode: 'open' | 'closed';
  quotaTimeZone: string;
  /** Whether generated Envoy listeners call our ext_authz service, and how Envoy reaches it. */
  envoyAuthz: 'on' | 'off';
  routeDiscovery: 'rds' | 'vhds' | 'vhds-on-demand';
  envoyAuthzAddress?: string;
  envoyAuthzPort?: number;
  /** With --authz-tls-*: the CA (PEM file) Envoy verifies the Check service with, and the SNI / DNS name checked. */
  envoyAuthzCa?: string;
  envoyAuthzSni?: string;
  authzTimeoutMs: number;
  authzFailMode: 'open' | 'closed';
  /** Envoy bootstrap cluster that reaches our xDS port: generated HCMs send access logs there. */
  envoyAlsCluster?: string;
  /** Per-apikey request counters from Envoy access logs (cardinality = number of apikeys). */
  metricsPerApikey: 'on' | 'off';
  /** Audit events also go to this file (JSON lines) and/or webhook (batched POSTs). */
  auditFile?: string;
  auditWebhook?: string;
  dataDir: string;
  /** Where objects come from: a YAML directory (`file`) or the Kubernetes API (`kubernetes`). */
  source: 'file' | 'kubernetes';
  /** Kubernetes: kubeconfig file (default: KUBECONFIG, ~/.kube/config, then the in-cluster service account). */
  kubeconfig?: string;
  /** Kubernetes: comma-separated namespaces to watch, `*` = all. */
  namespaces: string;
  /** Kubernetes: label selector the CRDs and Ingresses must match. */
  labelSelector?: string;
  /** Comma-separated ingress classes served (`*` wildcards). */
  ingressClasses: string;
  /** Group of Ingress-generated descriptors. */
  defaultGroup: string;
  /** Otoroshi's mesh hosts on CRD descriptors: auto = on with the Kubernetes source, off in file mode. */
  meshHosts: 'auto' | 'on' | 'off';
  /** Sidecars: intercepted traffic to destinations the mesh does not know, forwarded or refused (docs/mesh.md). */
  meshOutboundPolicy: 'allow-any' | 'registry-only';
  /** Mesh DNS domain (`<name>.<ns>.<meshDomain>`) and the cluster's DNS domain. */
  meshDomain: string;
  clusterDomain: string;
  /** Mesh certificate (`*.<meshDomain>` & co.) from our CA, served by gateways for mesh hosts (auto: with them). */
  meshCertificate: 'auto' | 'on' | 'off';
  /** Kubernetes: patch CoreDNS's Corefile with a marked block for the mesh domain (dry-run prints it). */
  corednsIntegration: 'off' | 'on' | 'dry-run';
  /** Namespace/name of the CoreDNS ConfigMap, and the Service mesh names are rewritten to (default: the gateway). */
  corednsConfigMap: string;
  corednsRewriteTarget?: string;
  /** Kubernetes: MutatingWebhookConfiguration (sidecar injection) whose caBundle the leader keeps ('' = never). */
  injectWebhookConfigName: string;
  /** Images of injected sidecars: Envoy, and otoroshi-xds (bootstrap + traffic interception init containers). */
  sidecarEnvoyImage: string;
  sidecarInitImage: string;
  /** xDS address (host:port) injected sidecars dial. */
  sidecarXdsAddress?: string;
  /** Kubernetes: check ServiceAccount tokens presented on the xDS port with TokenReview (workload identity). */
  xdsTokenReview: 'auto' | 'on' | 'off';
  /** Audience the projected ServiceAccount tokens must carry. */
  xdsTokenAudience: string;
  /** Kubernetes: Lease used for leader election (namespace default: ours). */
  leaseName: string;
  leaseNamespace?: string;
  /** Lease duration (s): how long a dead leader blocks its successor; candidates retry every fifth of it. */
  leaseDurationSeconds: number;
  /** Identity in the Lease and in Events (the pod name; default: the host name). */
  podName?: string;
  /** Kubernetes: address written to `status.loadBalancer.ingress` of served Ingresses. */
  ingressAddress?: string;
  /** Kubernetes: file (JSON/YAML) of per-kind templates merged under each CR's spec. */
  templates?: string;
  /** Kubernetes: restart Deployments that mount an exported secret that changed. */
  restartDependantDeployments: 'on' | 'off';
  /** Kubernetes: HTTPS port of the validating admission webhook (off when unset). */
  webhookPort?: number;
  /** Comma-separated DNS names / IPs of the webhook's serving certificate (issued by our CA). */
  webhookHosts?: string;
  /** ValidatingWebhookConfiguration whose caBundle the leader sets to our root CA ('' = never touch it). */
  webhookConfigName: string;
  /** Bearer token required by the admin API (probes excepted); unset = open (bind it to loopback). */
  adminToken?: string;
  /**
   * TLS on the xDS / ext_authz ports (PEM files); with a client CA, clients must present a certificate it signed
   * (mTLS).
   */
  xdsTlsCert?: string;
  xdsTlsKey?: string;
  xdsClientCa?: string;
  /**
   * Who gets which secret over xDS: `identity` (client certificate / gateway token) or the insecure self-asserted node
   * metadata.
   */
  xdsNodeAuth: 'identity' | 'insecure-node-metadata';
  /** Comma-separated SPIFFE ids (URI SAN of the xDS client certificate) granted the gateway role. */
  gatewayIdentities?: string;
  /** Bearer token (gRPC `authorization` metadata) granting the gateway role. */
  gatewayToken?: string;
  /**
   * What a gateway receives: the certificates the generated listeners/clusters use, or every certificate of the model.
   */
  gatewaySecrets: 'referenced' | 'all';
  /** Local development: plaintext xDS clients on loopback are gateways. */
  loopbackGateway: 'on' | 'off';
  /** Workload certificates cached at most (none minted beyond). */
  maxWorkloadCerts: number;
  /** Size bounds of the YAML config directory: per file and in total (bytes). */
  maxConfigFileBytes: number;
  maxConfigTotalBytes: number;
  authzTlsCert?: string;
  authzTlsKey?: string;
  authzClientCa?: string;
}

export interface OptionSpec {
  key: keyof Config;
  flag: string;
  env: string;
  kind: 'string' | 'port' | 'int';
  description: string;
  default?: string | number;
}

export const OPTIONS: readonly OptionSpec[] = [
  {
    key: 'configDir',
    flag: 'config',
    env: 'OXDS_CONFIG',
    kind: 'string',
    description: 'directory of YAML objects',
    default: 'examples',
  },
  {
    key: 'host',
    flag: 'host',
    env: 'OXDS_HOST',
    kind: 'string',
    description: 'bind address (use 0.0.0.0 in a cluster)',
    default: '127.0.0.1',
  },
  {
    key: 'xdsPort',
    flag: 'xds-port',
    env: 'OXDS_XDS_PORT',
    kind: 'port',
    description: 'xDS (ADS/SDS) gRPC port',
    default: 18000,
  },
  {
    key: 'authzPort',
    flag: 'authz-port',
    env: 'OXDS_AUTHZ_PORT',
    kind: 'port',
    description: 'ext_authz gRPC port',
    default: 18001,
  },
  {
    key: 'adminPort',
    flag: 'admin-port',
    env: 'OXDS_ADMIN_PORT',
    kind: 'port',
    description: 'admin HTTP port (probes, metrics)',
    default: 18080,
  },
  {
    key: 'envoyHttpPort',
    flag: 'envoy-http-port',
    env: 'OXDS_ENVOY_HTTP_PORT',
    kind: 'port',
    description: 'port of the generated Envoy HTTP listener',
    default: 8080,
  },
  {
    key: 'envoyHttpsPort',
    flag: 'envoy-https-port',
    env: 'OXDS_ENVOY_HTTPS_PORT',
    kind: 'port',
    description: 'port of the generated Envoy HTTPS listener',
    default: 8443,
  },
  {
    key: 'envoyListenAddress',
    flag: 'envoy-listen-address',
    env: 'OXDS_ENVOY_LISTEN_ADDRESS',
    kind: 'string',
    description: 'address the generated Envoy listeners bind',
    default: '0.0.0.0',
  },
  {
    key: 'logLevel',
    flag: 'log-level',
    env: 'OXDS_LOG_LEVEL',
    kind: 'string',
    description: 'trace|debug|info|warn|error|silent',
    default: 'info',
  },
  {
    key: 'debounceMs',
    flag: 'debounce-ms',
    env: 'OXDS_DEBOUNCE_MS',
    kind: 'int',
    description: 'quiet period before a rebuild (ms)',
    default: 100,
  },
  {
    key: 'debounceMaxMs',
    flag: 'debounce-max-ms',
    env: 'OXDS_DEBOUNCE_MAX_MS',
    kind: 'int',
    description: 'maximum delay of a rebuild under constant churn (ms)',
    default: 1000,
  },
  {
    key: 'clusterGraceMs',
    flag: 'cluster-grace-ms',
    env: 'OXDS_CLUSTER_GRACE_MS',
    kind: 'int',
    description: 'how long a removed cluster is still served so clients switch routes first (ms)',
    default: 10000,
  },
  {
    key: 'xdsMaxNames',
    flag: 'xds-max-names',
    env: 'OXDS_XDS_MAX_NAMES',
    kind: 'int',
    description:
      'max resource names per xDS request / subscribed per type and stream (an Envoy in SotW mode subscribes one ' +
      'EDS name per cluster)',
    default: 100000,
  },
  {
    key: 'caCert',
    flag: 'ca-cert',
    env: 'OXDS_CA_CERT',
    kind: 'string',
    description:
      'PEM file of the signing CA certificate (and its chain up to the root); with --ca-key and --ca-root-cert. ' +
      'Default: a CA generated and kept in --data-dir',
  },
  {
    key: 'caKey',
    flag: 'ca-key',
    env: 'OXDS_CA_KEY',
    kind: 'string',
    description: 'PEM file of the signing CA private key',
  },
  {
    key: 'caRootCert',
    flag: 'ca-root-cert',
    env: 'OXDS_CA_ROOT_CERT',
    kind: 'string',
    description: 'PEM file of the root CA certificate (the trust bundle otoroshi-ca-bundle)',
  },
  {
    key: 'trustDomain',
    flag: 'trust-domain',
    env: 'OXDS_TRUST_DOMAIN',
    kind: 'string',
    description: 'SPIFFE trust domain of workload certificates (spiffe://<domain>/ns/<ns>/sa/<sa>)',
    default: 'cluster.local',
  },
  {
    key: 'workloadCertTtlMs',
    flag: 'workload-cert-ttl-ms',
    env: 'OXDS_WORKLOAD_CERT_TTL_MS',
    kind: 'int',
    description: 'lifetime of workload (sidecar) certificates (ms)',
    default: 86400000,
  },
  {
    key: 'redisUrl',
    flag: 'redis-url',
    env: 'OXDS_REDIS_URL',
    kind: 'string',
    description: 'quota store (redis://host:port); in-memory when unset',
  },
  {
    key: 'redisCommandTimeoutMs',
    flag: 'redis-command-timeout-ms',
    env: 'OXDS_REDIS_COMMAND_TIMEOUT_MS',
    kind: 'int',
    description: 'quota store command timeout (ms); a slower answer is handled per --quota-fail-mode',
    default: 50,
  },
  {
    key: 'quotaFailMode',
    flag: 'quota-fail-mode',
    env: 'OXDS_QUOTA_FAIL_MODE',
    kind: 'string',
    description: 'when the quota store is down: open (local counters) or closed (503)',
    default: 'open',
  },
  {
    key: 'quotaTimeZone',
    flag: 'quota-time-zone',
    env: 'OXDS_QUOTA_TIME_ZONE',
    kind: 'string',
    description: 'IANA time zone of daily/monthly quota resets',
    default: 'UTC',
  },
  {
    key: 'routeDiscovery',
    flag: 'route-discovery',
    env: 'OXDS_ROUTE_DISCOVERY',
    kind: 'string',
    description:
      'gateway routes for Delta Envoys: rds (whole route table per change), vhds (virtual hosts as VHDS ' +
      'resources, all sent), vhds-on-demand (each fetched on its first request); SotW Envoys always get rds',
    default: 'vhds',
  },
  {
    key: 'envoyAuthz',
    flag: 'envoy-authz',
    env: 'OXDS_ENVOY_AUTHZ',
    kind: 'string',
    description:
      'on: generated Envoy listeners call our ext_authz (private descriptors need it); off: no ext_authz filter',
    default: 'on',
  },
  {
    key: 'envoyAuthzAddress',
    flag: 'envoy-authz-address',
    env: 'OXDS_ENVOY_AUTHZ_ADDRESS',
    kind: 'string',
    description:
      'address(es) Envoy uses to reach the ext_authz service: HOST, or a comma-separated list of HOST[:PORT] ' +
      'replicas Envoy load-balances over (a Service DNS name in a cluster; default: --host, or 127.0.0.1 when ' +
      '--host is a wildcard)',
  },
  {
    key: 'envoyAuthzCa',
    flag: 'envoy-authz-ca',
    env: 'OXDS_ENVOY_AUTHZ_CA',
    kind: 'string',
    description:
      'with --authz-tls-*: PEM CA bundle Envoy verifies the ext_authz certificate with (default: the ' +
      '--authz-tls-cert chain)',
  },
  {
    key: 'envoyAuthzSni',
    flag: 'envoy-authz-sni',
    env: 'OXDS_ENVOY_AUTHZ_SNI',
    kind: 'string',
    description:
      'with --authz-tls-*: SNI Envoy sends to ext_authz and DNS name its certificate must carry (default: the ' +
      'first --envoy-authz-address when it is a name; for IP addresses the certificate must carry the IP)',
  },
  {
    key: 'envoyAuthzPort',
    flag: 'envoy-authz-port',
    env: 'OXDS_ENVOY_AUTHZ_PORT',
    kind: 'port',
    description: 'port Envoy uses to reach the ext_authz service (default: the bound --authz-port)',
  },
  {
    key: 'authzTimeoutMs',
    flag: 'authz-timeout-ms',
    env: 'OXDS_AUTHZ_TIMEOUT_MS',
    kind: 'int',
    description: "Envoy's timeout for one Check (ms)",
    default: 200,
  },
  {
    key: 'authzFailMode',
    flag: 'authz-fail-mode',
    env: 'OXDS_AUTHZ_FAIL_MODE',
    kind: 'string',
    description: 'when Envoy cannot reach ext_authz: closed (503) or open (let requests through)',
    default: 'closed',
  },
  {
    key: 'envoyAlsCluster',
    flag: 'envoy-als-cluster',
    env: 'OXDS_ENVOY_ALS_CLUSTER',
    kind: 'string',
    description:
      'name of the Envoy bootstrap cluster pointing at our xDS port (e.g. xds_cluster): generated listeners then ' +
      'stream access logs to us (traffic metrics)',
  },
  {
    key: 'metricsPerApikey',
    flag: 'metrics-per-apikey',
    env: 'OXDS_METRICS_PER_APIKEY',
    kind: 'string',
    description: 'on: per-apikey request counters from access logs',
    default: 'off',
  },
  {
    key: 'auditFile',
    flag: 'audit-file',
    env: 'OXDS_AUDIT_FILE',
    kind: 'string',
    description: 'append audit events to this file (JSON lines)',
  },
  {
    key: 'auditWebhook',
    flag: 'audit-webhook',
    env: 'OXDS_AUDIT_WEBHOOK',
    kind: 'string',
    description: 'POST audit events (JSON arrays, batched) to this URL',
  },
  {
    key: 'adminToken',
    flag: 'admin-token',
    env: 'OXDS_ADMIN_TOKEN',
    kind: 'string',
    description:
      'bearer token required by the admin API except /live /ready /health (prefer the env var: flags show in ps)',
  },
  {
    key: 'xdsTlsCert',
    flag: 'xds-tls-cert',
    env: 'OXDS_XDS_TLS_CERT',
    kind: 'string',
    description: 'PEM certificate chain of the xDS port (TLS; plaintext when unset)',
  },
  {
    key: 'xdsTlsKey',
    flag: 'xds-tls-key',
    env: 'OXDS_XDS_TLS_KEY',
    kind: 'string',
    description: 'PEM private key of --xds-tls-cert',
  },
  {
    key: 'xdsClientCa',
    flag: 'xds-client-ca',
    env: 'OXDS_XDS_CLIENT_CA',
    kind: 'string',
    description: 'PEM CA bundle: xDS clients must present a certificate it signed (mTLS)',
  },
  {
    key: 'xdsNodeAuth',
    flag: 'xds-node-auth',
    env: 'OXDS_XDS_NODE_AUTH',
    kind: 'string',
    description:
      'who receives which secret over xDS: identity (client certificate SPIFFE id or gateway token; see ' +
      'docs/node-authorization.md) or insecure-node-metadata (any node gets every certificate and names its own ' +
      'workload identity: never in production)',
    default: 'identity',
  },
  {
    key: 'gatewayIdentities',
    flag: 'gateway-identities',
    env: 'OXDS_GATEWAY_IDENTITIES',
    kind: 'string',
    description:
      'comma-separated SPIFFE ids (URI SAN of the xDS client certificate, mTLS) granted the gateway role: they ' +
      'receive the certificates of the generated listeners and clusters',
  },
  {
    key: 'gatewayToken',
    flag: 'gateway-token',
    env: 'OXDS_GATEWAY_TOKEN',
    kind: 'string',
    description:
      'bearer token (gRPC metadata `authorization: Bearer <token>`) granting the gateway role (prefer the env ' +
      'var: flags show in ps)',
  },
  {
    key: 'gatewaySecrets',
    flag: 'gateway-secrets',
    env: 'OXDS_GATEWAY_SECRETS',
    kind: 'string',
    description:
      'referenced: gateways receive the certificates the generated listeners and clusters use; all: every ' +
      'certificate of the model (for hand-written Envoy config that names <namespace>/<name>)',
    default: 'referenced',
  },
  {
    key: 'loopbackGateway',
    flag: 'loopback-gateway',
    env: 'OXDS_LOOPBACK_GATEWAY',
    kind: 'string',
    description: 'on: any plaintext xDS client on a loopback address is a gateway (local development only)',
    default: 'off',
  },
  {
    key: 'maxWorkloadCerts',
    flag: 'max-workload-certs',
    env: 'OXDS_MAX_WORKLOAD_CERTS',
    kind: 'int',
    description: 'workload certificates cached at most (no new one is minted beyond)',
    default: 10000,
  },
  {
    key: 'maxConfigFileBytes',
    flag: 'max-config-file-bytes',
    env: 'OXDS_MAX_CONFIG_FILE_BYTES',
    kind: 'int',
    description: 'a larger YAML file is refused (reported on that file; the rest is served)',
    default: 2 * 1024 * 1024,
  },
  {
    key: 'maxConfigTotalBytes',
    flag: 'max-config-total-bytes',
    env: 'OXDS_MAX_CONFIG_TOTAL_BYTES',
    kind: 'int',
    description: 'files beyond this total size of the config directory are refused (in path order)',
    default: 32 * 1024 * 1024,
  },
  {
    key: 'authzTlsCert',
    flag: 'authz-tls-cert',
    env: 'OXDS_AUTHZ_TLS_CERT',
    kind: 'string',
    description: 'PEM certificate chain of the ext_authz port (TLS; plaintext when unset)',
  },
  {
    key: 'authzTlsKey',
    flag: 'authz-tls-key',
    env: 'OXDS_AUTHZ_TLS_KEY',
    kind: 'string',
    description: 'PEM private key of --authz-tls-cert',
  },
  {
    key: 'authzClientCa',
    flag: 'authz-client-ca',
    env: 'OXDS_AUTHZ_CLIENT_CA',
    kind: 'string',
    description: 'PEM CA bundle: ext_authz clients must present a certificate it signed (mTLS)',
  },
  {
    key: 'dataDir',
    flag: 'data-dir',
    env: 'OXDS_DATA_DIR',
    kind: 'string',
    description: 'data directory (CA state)',
    default: '.data',
  },
  {
    key: 'source',
    flag: 'source',
    env: 'OXDS_SOURCE',
    kind: 'string',
    description: 'where objects come from: file (--config directory) or kubernetes (the API server)',
    default: 'file',
  },
  {
    key: 'kubeconfig',
    flag: 'kubeconfig',
    env: 'OXDS_KUBECONFIG',
    kind: 'string',
    description: 'kubeconfig file (default: KUBECONFIG, ~/.kube/config, else in-cluster)',
  },
  {
    key: 'namespaces',
    flag: 'namespaces',
    env: 'OXDS_NAMESPACES',
    kind: 'string',
    description: 'comma-separated namespaces to watch (* = all)',
    default: '*',
  },
  {
    key: 'labelSelector',
    flag: 'label-selector',
    env: 'OXDS_LABEL_SELECTOR',
    kind: 'string',
    description: 'label selector the CRDs and Ingresses must match (e.g. otoroshi.io/enabled=true)',
  },
  {
    key: 'ingressClasses',
    flag: 'ingress-classes',
    env: 'OXDS_INGRESS_CLASSES',
    kind: 'string',
    description: 'comma-separated ingress classes served (* wildcards)',
    default: 'otoroshi',
  },
  {
    key: 'defaultGroup',
    flag: 'default-group',
    env: 'OXDS_DEFAULT_GROUP',
    kind: 'string',
    description: 'group of Ingress-generated descriptors',
    default: 'default',
  },
  {
    key: 'meshHosts',
    flag: 'mesh-hosts',
    env: 'OXDS_MESH_HOSTS',
    kind: 'string',
    description:
      "Otoroshi's mesh hosts on CRD ServiceDescriptors (<name>.<ns>.<mesh-domain> & co.): auto (on with --source " +
      'kubernetes), on, off',
    default: 'auto',
  },
  {
    key: 'meshOutboundPolicy',
    flag: 'mesh-outbound-policy',
    env: 'OXDS_MESH_OUTBOUND_POLICY',
    kind: 'string',
    description:
      'sidecars: intercepted traffic to hosts the mesh does not know: allow-any (to its original destination), ' +
      'registry-only (refused)',
    default: 'allow-any',
  },
  {
    key: 'meshDomain',
    flag: 'mesh-domain',
    env: 'OXDS_MESH_DOMAIN',
    kind: 'string',
    description: 'DNS domain of mesh hosts (KubernetesConfig meshDomain)',
    default: 'otoroshi.mesh',
  },
  {
    key: 'clusterDomain',
    flag: 'cluster-domain',
    env: 'OXDS_CLUSTER_DOMAIN',
    kind: 'string',
    description: "the cluster's DNS domain (KubernetesConfig clusterDomain)",
    default: 'cluster.local',
  },
  {
    key: 'meshCertificate',
    flag: 'mesh-certificate',
    env: 'OXDS_MESH_CERTIFICATE',
    kind: 'string',
    description:
      'serve a certificate for *.<mesh-domain> from our CA on gateways: auto (when mesh hosts are on), on, off',
    default: 'auto',
  },
  {
    key: 'corednsIntegration',
    flag: 'coredns-integration',
    env: 'OXDS_COREDNS_INTEGRATION',
    kind: 'string',
    description:
      "patch CoreDNS's Corefile with a marked block resolving <mesh-domain> (leader only): off, on, dry-run (log the " +
      'block)',
    default: 'off',
  },
  {
    key: 'corednsConfigMap',
    flag: 'coredns-configmap',
    env: 'OXDS_COREDNS_CONFIGMAP',
    kind: 'string',
    description: 'namespace/name of the CoreDNS ConfigMap',
    default: 'kube-system/coredns',
  },
  {
    key: 'corednsRewriteTarget',
    flag: 'coredns-rewrite-target',
    env: 'OXDS_COREDNS_REWRITE_TARGET',
    kind: 'string',
    description: 'the name mesh hosts resolve as (default: otoroshi-xds-gateway.<namespace>.svc.<cluster-domain>)',
  },
  {
    key: 'injectWebhookConfigName',
    flag: 'inject-webhook-config',
    env: 'OXDS_INJECT_WEBHOOK_CONFIG',
    kind: 'string',
    description:
      "MutatingWebhookConfiguration (sidecar injection) whose caBundle the leader sets to our root CA ('' = never)",
    default: 'otoroshi-xds-inject',
  },
  {
    key: 'sidecarEnvoyImage',
    flag: 'sidecar-envoy-image',
    env: 'OXDS_SIDECAR_ENVOY_IMAGE',
    kind: 'string',
    description: 'Envoy image of injected sidecars',
    default: 'envoyproxy/envoy:v1.31-latest',
  },
  {
    key: 'sidecarInitImage',
    flag: 'sidecar-init-image',
    env: 'OXDS_SIDECAR_INIT_IMAGE',
    kind: 'string',
    description: 'otoroshi-xds image of the injected init containers (bootstrap sidecar, iptables interception)',
    default: 'otoroshi-xds:0.1.0',
  },
  {
    key: 'sidecarXdsAddress',
    flag: 'sidecar-xds-address',
    env: 'OXDS_SIDECAR_XDS_ADDRESS',
    kind: 'string',
    description: 'host:port injected sidecars dial for xDS (default: otoroshi-xds-xds.<namespace>.svc:18000)',
  },
  {
    key: 'xdsTokenReview',
    flag: 'xds-token-review',
    env: 'OXDS_XDS_TOKEN_REVIEW',
    kind: 'string',
    description:
      'workload identity from a projected ServiceAccount token (gRPC authorization metadata) ' +
      'checked with TokenReview: ' +
      'auto (with --source kubernetes), on, off',
    default: 'auto',
  },
  {
    key: 'xdsTokenAudience',
    flag: 'xds-token-audience',
    env: 'OXDS_XDS_TOKEN_AUDIENCE',
    kind: 'string',
    description: 'audience the ServiceAccount tokens of sidecars must carry',
    default: 'otoroshi-xds',
  },
  {
    key: 'leaseName',
    flag: 'lease-name',
    env: 'OXDS_LEASE_NAME',
    kind: 'string',
    description: 'coordination.k8s.io Lease of the leader election (the leader writes statuses and secrets)',
    default: 'otoroshi-xds-leader',
  },
  {
    key: 'leaseDurationSeconds',
    flag: 'lease-duration-seconds',
    env: 'OXDS_LEASE_DURATION_SECONDS',
    kind: 'int',
    description: 'Lease duration (s) of the leader election',
    default: 15,
  },
  {
    key: 'leaseNamespace',
    flag: 'lease-namespace',
    env: 'OXDS_LEASE_NAMESPACE',
    kind: 'string',
    description: 'namespace of the Lease (default: our own namespace)',
  },
  {
    key: 'podName',
    flag: 'pod-name',
    env: 'OXDS_POD_NAME',
    kind: 'string',
    description: 'identity in the Lease and in Events (default: the host name)',
  },
  {
    key: 'ingressAddress',
    flag: 'ingress-address',
    env: 'OXDS_INGRESS_ADDRESS',
    kind: 'string',
    description: 'IP or host name written to status.loadBalancer of served Ingresses',
  },
  {
    key: 'templates',
    flag: 'templates',
    env: 'OXDS_TEMPLATES',
    kind: 'string',
    description: 'JSON/YAML file of per-kind templates merged under each CR spec (KubernetesConfig templates)',
  },
  {
    key: 'restartDependantDeployments',
    flag: 'restart-dependant-deployments',
    env: 'OXDS_RESTART_DEPENDANT_DEPLOYMENTS',
    kind: 'string',
    description: 'on: restart Deployments that mount an exported secret that changed',
    default: 'off',
  },
  {
    key: 'webhookPort',
    flag: 'webhook-port',
    env: 'OXDS_WEBHOOK_PORT',
    kind: 'port',
    description: 'Kubernetes: HTTPS port of the validating admission webhook (POST /validate); off when unset',
  },
  {
    key: 'webhookHosts',
    flag: 'webhook-hosts',
    env: 'OXDS_WEBHOOK_HOSTS',
    kind: 'string',
    description:
      'comma-separated DNS names/IPs of the webhook certificate (default: otoroshi-xds-webhook.<lease ' +
      'namespace>.svc and .svc.cluster.local)',
  },
  {
    key: 'webhookConfigName',
    flag: 'webhook-config-name',
    env: 'OXDS_WEBHOOK_CONFIG_NAME',
    kind: 'string',
    description: "ValidatingWebhookConfiguration whose caBundle the leader sets to our root CA ('' = never touch it)",
    default: 'otoroshi-xds',
  },
];

const LOG_LEVELS = ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'] as const;

export type ConfigResult = { ok: true; value: Config } | { ok: false; errors: string[] };

/**
 * Resolves the configuration: explicit flag values win over environment variables, which win
 * over defaults. Pure: flags and env are passed in.
 */
/** Each option from its flag, else its env var, else its default; numbers parsed and range-checked. */
function readOptions(
  flags: Record<string, unknown>,
  env: Record<string, string | undefined>,
  errors: string[],
): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const o of OPTIONS) {
    const camel = o.flag.replace(/-([a-z])/g, (_m, c: string) => c.toUpperCase());
    const fromFlag = flags[camel];
    const raw =
      fromFlag !== undefined ? fromFlag : env[o.env] !== undefined && env[o.env] !== '' ? env[o.env] : o.default;
    if (raw === undefined) continue;
    const source = fromFlag !== undefined ? `--${o.flag}` : env[o.env] !== undefined ? o.env : 'default';
    if (o.kind === 'string') {
      out[o.key] = String(raw);
      continue;
    }
    const n = typeof raw === 'number' ? raw : Number(String(raw).trim());
    if (!Number.isInteger(n) || n < 0 || (o.kind === 'port' && n > 65535)) {
      errors.push(
        `${source}: expected ${o.kind === 'port' ? 'a port number (0-65535)' : 'a non-negative integer'}, got ` +
          `${JSON.stringify(raw)}`,
      );
      continue;
    }
    out[o.key] = n;
  }
  return out;
}

/** Options with a fixed set of values, and DNS-name options. */
function checkChoices(out: Record<string, unknown>, errors: string[]): void {
  if (!(LOG_LEVELS as readonly string[]).includes(String(out.logLevel))) {
    errors.push(`--log-level: expected one of ${LOG_LEVELS.join('|')}, got ${JSON.stringify(out.logLevel)}`);
  }
  for (const [k, flag, allowed] of [
    ['envoyAuthz', '--envoy-authz', ['on', 'off']],
    ['routeDiscovery', '--route-discovery', ['rds', 'vhds', 'vhds-on-demand']],
    ['authzFailMode', '--authz-fail-mode', ['open', 'closed']],
    ['metricsPerApikey', '--metrics-per-apikey', ['on', 'off']],
    ['source', '--source', ['file', 'kubernetes']],
    ['restartDependantDeployments', '--restart-dependant-deployments', ['on', 'off']],
    ['xdsNodeAuth', '--xds-node-auth', ['identity', 'insecure-node-metadata']],
    ['loopbackGateway', '--loopback-gateway', ['on', 'off']],
    ['gatewaySecrets', '--gateway-secrets', ['referenced', 'all']],
    ['meshHosts', '--mesh-hosts', ['auto', 'on', 'off']],
    ['meshOutboundPolicy', '--mesh-outbound-policy', ['allow-any', 'registry-only']],
    ['meshCertificate', '--mesh-certificate', ['auto', 'on', 'off']],
    ['corednsIntegration', '--coredns-integration', ['off', 'on', 'dry-run']],
    ['xdsTokenReview', '--xds-token-review', ['auto', 'on', 'off']],
  ] as const) {
    if (!(allowed as readonly string[]).includes(String(out[k])))
      errors.push(`${flag}: expected ${allowed.join('|')}, got ${JSON.stringify(out[k])}`);
  }
  for (const [k, flag] of [
    ['meshDomain', '--mesh-domain'],
    ['clusterDomain', '--cluster-domain'],
  ] as const) {
    if (
      !/^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$/.test(String(out[k]))
    )
      errors.push(`${flag}: expected a lowercase DNS name (e.g. otoroshi.mesh), got ${JSON.stringify(out[k])}`);
  }
}

/** Quota policy and time zone, debounce, CA files, TTL and size limits. */
function checkQuotaAndLimits(out: Record<string, unknown>, errors: string[]): void {
  if (out.quotaFailMode !== 'open' && out.quotaFailMode !== 'closed') {
    errors.push(`--quota-fail-mode: expected open|closed, got ${JSON.stringify(out.quotaFailMode)}`);
  }
  // UTC (the default) is always known: no time-zone database lookup (~20 ms at start-up) for it.
  try {
    if (out.quotaTimeZone !== 'UTC') new Intl.DateTimeFormat('en-US', { timeZone: String(out.quotaTimeZone) });
  } catch {
    errors.push(`--quota-time-zone: unknown time zone ${JSON.stringify(out.quotaTimeZone)}`);
  }
  if (
    typeof out.debounceMs === 'number' &&
    typeof out.debounceMaxMs === 'number' &&
    out.debounceMaxMs < out.debounceMs
  ) {
    errors.push(`--debounce-max-ms (${out.debounceMaxMs}) must be >= --debounce-ms (${out.debounceMs})`);
  }
  const caFiles = [out.caCert, out.caKey, out.caRootCert].filter((x) => x !== undefined).length;
  if (caFiles !== 0 && caFiles !== 3)
    errors.push('--ca-cert, --ca-key and --ca-root-cert go together (all three, or none for a generated CA)');
  if (typeof out.workloadCertTtlMs === 'number' && out.workloadCertTtlMs < 60_000)
    errors.push(`--workload-cert-ttl-ms: at least 60000, got ${out.workloadCertTtlMs}`);
  if (out.redisCommandTimeoutMs === 0) errors.push('--redis-command-timeout-ms: at least 1, got 0');
  if (typeof out.xdsMaxNames === 'number' && out.xdsMaxNames < 1) errors.push('--xds-max-names: at least 1, got 0');
  if (typeof out.namespaces === 'string' && splitList(out.namespaces).length === 0)
    errors.push('--namespaces: expected a comma-separated list of namespaces or *');
}

/** TLS flags that go together, addresses and the webhook. */
function checkTlsAndAddresses(out: Record<string, unknown>, errors: string[]): void {
  for (const [port, cert, key, ca] of [
    ['xds', 'xdsTlsCert', 'xdsTlsKey', 'xdsClientCa'],
    ['authz', 'authzTlsCert', 'authzTlsKey', 'authzClientCa'],
  ] as const) {
    if ((out[cert] === undefined) !== (out[key] === undefined))
      errors.push(`--${port}-tls-cert and --${port}-tls-key go together`);
    if (out[ca] !== undefined && out[cert] === undefined)
      errors.push(`--${port}-client-ca needs --${port}-tls-cert and --${port}-tls-key`);
  }
  if (
    typeof out.corednsConfigMap === 'string' &&
    !/^[a-z0-9]([-a-z0-9]*[a-z0-9])?\/[a-z0-9]([-.a-z0-9]*[a-z0-9])?$/.test(out.corednsConfigMap)
  )
    errors.push(`--coredns-configmap: expected NAMESPACE/NAME, got ${JSON.stringify(out.corednsConfigMap)}`);
  if (
    typeof out.sidecarXdsAddress === 'string' &&
    !/^(\[[0-9a-fA-F:.]+\]|[^:[\]\s]+):\d{1,5}$/.test(out.sidecarXdsAddress)
  )
    errors.push(`--sidecar-xds-address: expected HOST:PORT, got ${JSON.stringify(out.sidecarXdsAddress)}`);
  if (typeof out.envoyAuthzAddress === 'string') {
    const parsed = parseAuthzAddresses(out.envoyAuthzAddress, 1);
    if (typeof parsed === 'string') errors.push(`--envoy-authz-address: ${parsed}`);
  }
  for (const k of ['envoyAuthzCa', 'envoyAuthzSni'] as const) {
    if (out[k] !== undefined && out.authzTlsCert === undefined)
      errors.push(
        `--${k === 'envoyAuthzCa' ? 'envoy-authz-ca' : 'envoy-authz-sni'} needs --authz-tls-cert and --authz-tls-key`,
      );
  }
  if (out.webhookPort !== undefined && out.source !== 'kubernetes')
    errors.push('--webhook-port needs --source kubernetes (the API server calls the webhook)');
}

export function resolveConfig(flags: Record<string, unknown>, env: Record<string, string | undefined>): ConfigResult {
  const errors: string[] = [];
  const out = readOptions(flags, env, errors);
  checkChoices(out, errors);
  checkQuotaAndLimits(out, errors);
  checkTlsAndAddresses(out, errors);
  if (errors.length) return { ok: false, errors };
  return { ok: true, value: Object.freeze(out as unknown as Config) };
}

/**
 * Server credentials of a gRPC port from PEM files: plaintext without a certificate, TLS with one,
 * mTLS (client certificate required and verified) with a client CA. Reads the files (throws when unreadable).
 */
export function serverCredentialsFrom(
  files: { cert?: string; key?: string; clientCa?: string },
  read: (f: string) => Buffer,
): ServerCredentials {
  // grpc-js is loaded by the commands that serve only (a `translate` start-up does not pay for it).
  const { ServerCredentials } = createRequire(import.meta.url)('@grpc/grpc-js') as typeof import('@grpc/grpc-js');
  if (!files.cert || !files.key) return ServerCredentials.createInsecure();
  const ca = files.clientCa ? read(files.clientCa) : null;
  return ServerCredentials.createSsl(ca, [{ cert_chain: read(files.cert), private_key: read(files.key) }], ca !== null);
}

/**
 * `a, b:1, [::1]:2` → replicas (`defaultPort` where none is given), or an error message. Entries
 * are host names, IPv4 or bracketed IPv6 addresses, each with an optional port.
 */
export function parseAuthzAddresses(s: string, defaultPort: number): Array<{ address: string; port: number }> | string {
  const list = splitList(s);
  if (list.length === 0) return 'expected HOST or a comma-separated list of HOST[:PORT]';
  const out: Array<{ address: string; port: number }> = [];
  for (const e of list) {
    const m =
      /^\[([0-9a-fA-F:.]+)\](?::(\d{1,5}))?$/.exec(e) ??
      /^([^:[\]\s,]+)(?::(\d{1,5}))?$/.exec(e) ??
      (/^[0-9a-fA-F:]+$/.test(e) && e.includes('::') ? [e, e] : null);
    const port = m?.[2] !== undefined ? Number(m[2]) : defaultPort;
    if (!m || !m[1] || !(port >= 1 && port <= 65535))
      return `${JSON.stringify(e)} is not HOST[:PORT] (port 1-65535; IPv6 as [addr]:port)`;
    out.push({ address: m[1], port });
  }
  return out;
}

/**
 * The translate options a config gives: Envoy listener ports and, unless `--envoy-authz off`,
 * where Envoy reaches our ext_authz service (`authzPort` = the port actually bound) and, when
 * that port speaks TLS, the CA Envoy verifies it with (`authzCaPem`, read by the caller).
 */
export function translateOptionsFrom(config: Config, authzPort: number, authzCaPem?: string): TranslateOptions {
  const opts: TranslateOptions = {
    listenAddress: config.envoyListenAddress,
    httpPort: config.envoyHttpPort,
    httpsPort: config.envoyHttpsPort,
  };
  if (config.envoyAlsCluster) opts.accessLogCluster = config.envoyAlsCluster;
  if (config.routeDiscovery !== 'rds') opts.vhds = true;
  if (config.envoyAuthz === 'on') {
    const wildcard = config.host === '0.0.0.0' || config.host === '::' || config.host === '[::]';
    const port = config.envoyAuthzPort ?? authzPort;
    const parsed = parseAuthzAddresses(config.envoyAuthzAddress ?? (wildcard ? '127.0.0.1' : config.host), port);
    const [first, ...replicas] =
      typeof parsed === 'string' ? [{ address: config.envoyAuthzAddress ?? '127.0.0.1', port }] : parsed;
    opts.authz = {
      address: first!.address,
      port: first!.port,
      timeoutMs: config.authzTimeoutMs,
      failureModeAllow: config.authzFailMode === 'open',
    };
    if (replicas.length > 0) opts.authz.replicas = replicas;
    if (config.authzTlsCert !== undefined && authzCaPem !== undefined) {
      const sni = config.envoyAuthzSni ?? (net.isIP(first!.address) === 0 ? first!.address : undefined);
      opts.authz.tls = { trustedCa: authzCaPem, ...(sni !== undefined ? { sni } : {}) };
    }
  }
  return opts;
}

/** `a, b,,c` → ['a', 'b', 'c']. */
export function splitList(s: string): string[] {
  return s
    .split(',')
    .map((x) => x.trim())
    .filter((x) => x !== '');
}

/** The model settings the config gives (ingress classes, default group, mesh hosts). */
export function modelSettingsFrom(
  config: Config,
): Pick<
  ModelSettings,
  'ingressClasses' | 'defaultGroup' | 'meshDomain' | 'clusterDomain' | 'enableMeshHosts' | 'meshCertificate'
> {
  return {
    ingressClasses: splitList(config.ingressClasses),
    defaultGroup: config.defaultGroup,
    meshDomain: config.meshDomain,
    clusterDomain: config.clusterDomain,
    enableMeshHosts: meshHostsEnabled(config),
    meshCertificate: config.meshCertificate === 'on' || (config.meshCertificate === 'auto' && meshHostsEnabled(config)),
  };
}

/** Mesh hosts are Otoroshi's for CRD descriptors in a cluster: on by default with the Kubernetes source only. */
export function meshHostsEnabled(config: Pick<Config, 'meshHosts' | 'source'>): boolean {
  return config.meshHosts === 'on' || (config.meshHosts === 'auto' && config.source === 'kubernetes');
}
