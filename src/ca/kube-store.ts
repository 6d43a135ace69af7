// Cluster mode: the CA material lives in one Kubernetes Secret (type Opaque, keys as the file
// store's file names), so every replica signs with the same CA. Only one replica creates it: a
// create that loses the race (409) makes loadOrCreate load the winner's.
import * as k8s from '@kubernetes/client-node';
import { CA_FILES, type CaMaterial, type CaStore } from './store.js';

export const CA_SECRET_LABELS = { 'app.kubernetes.io/managed-by': 'otoroshi-xds', 'otoroshi.io/kind': 'ca' } as const;

function isApiError(e: unknown, code: number): boolean {
  return typeof e === 'object' && e !== null && (e as { code?: unknown }).code === code;
}

const b64 = (s: string): string => Buffer.from(s, 'utf8').toString('base64');
const unb64 = (s: string | undefined): string | undefined => (s === undefined ? undefined : Buffer.from(s, 'base64').toString('utf8'));

export class KubeSecretCaStore implements CaStore {
  private readonly api: k8s.CoreV1Api;
  constructor(
    kc: k8s.KubeConfig,
    readonly namespace: string,
    readonly name = 'otoroshi-xds-ca',
  ) {
    this.api = kc.makeApiClient(k8s.CoreV1Api);
  }

  async load(): Promise<CaMaterial | undefined> {
    let s: k8s.V1Secret;
    try {
      s = await this.api.readNamespacedSecret({ name: this.name, namespace: this.namespace });
    } catch (e) {
      if (isApiError(e, 404)) return undefined;
      throw new Error(`cannot read the CA Secret ${this.namespace}/${this.name}: ${isApiError(e, 403) ? 'forbidden (RBAC: get secrets)' : (e as Error).message.split('\n')[0] ?? ''}`);
    }
    const d = s.data ?? {};
    const rootCert = unb64(d[CA_FILES.rootCert]);
    const rootKey = unb64(d[CA_FILES.rootKey]);
    const intCert = unb64(d[CA_FILES.intermediateCert]);
    const intKey = unb64(d[CA_FILES.intermediateKey]);
    if (rootCert === undefined || intCert === undefined || intKey === undefined) {
      throw new Error(`incomplete CA material in Secret ${this.namespace}/${this.name}: needs ${CA_FILES.rootCert}, ${CA_FILES.intermediateCert}, ${CA_FILES.intermediateKey}`);
    }
    return { version: 1, root: rootKey === undefined ? { certPem: rootCert } : { certPem: rootCert, keyPem: rootKey }, intermediate: { certPem: intCert, keyPem: intKey } };
  }

  /** Creates the Secret; throws an error with code EEXIST when another replica created it first. */
  async save(m: CaMaterial): Promise<void> {
    const data: Record<string, string> = {
      [CA_FILES.rootCert]: b64(m.root.certPem),
      [CA_FILES.intermediateCert]: b64(m.intermediate.certPem),
      [CA_FILES.intermediateKey]: b64(m.intermediate.keyPem),
    };
    if (m.root.keyPem !== undefined) data[CA_FILES.rootKey] = b64(m.root.keyPem);
    try {
      await this.api.createNamespacedSecret({
        namespace: this.namespace,
        body: { apiVersion: 'v1', kind: 'Secret', type: 'Opaque', metadata: { name: this.name, namespace: this.namespace, labels: { ...CA_SECRET_LABELS } }, data },
      });
    } catch (e) {
      if (isApiError(e, 409)) throw Object.assign(new Error(`CA Secret ${this.namespace}/${this.name} already exists`), { code: 'EEXIST' });
      throw new Error(`cannot create the CA Secret ${this.namespace}/${this.name}: ${(e as Error).message.split('\n')[0] ?? ''}`);
    }
  }
}
