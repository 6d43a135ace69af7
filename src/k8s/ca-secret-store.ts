// Cluster mode: the CA material lives in one Kubernetes Secret (type Opaque, keys as the file
// store's file names), so every replica signs with the same CA. Only one replica creates it: a
// create that loses the race (409) makes loadOrCreate load the winner's.
import { CA_FILES, type CaMaterial, type CaStore } from '../ca/store.js';
import { KubeApiError, collectionPath, objectPath, type KubeClient } from './client.js';
import { MANAGED_BY_LABEL, MANAGED_BY_VALUE } from './secret-exporter.js';

const b64 = (s: string): string => Buffer.from(s, 'utf8').toString('base64');
const unb64 = (s: string | undefined): string | undefined =>
  s === undefined ? undefined : Buffer.from(s, 'base64').toString('utf8');
const firstLine = (e: unknown): string => (e as Error).message.split('\n')[0] ?? '';

export class KubeSecretCaStore implements CaStore {
  constructor(
    private readonly client: KubeClient,
    readonly namespace: string,
    readonly name = 'otoroshi-xds-ca',
  ) {}

  async load(): Promise<CaMaterial | undefined> {
    let s: { data?: Record<string, string> } | undefined;
    try {
      s = await this.client.find(objectPath('v1', 'secrets', this.namespace, this.name));
    } catch (e) {
      const why = e instanceof KubeApiError && e.statusCode === 403 ? 'forbidden (RBAC: get secrets)' : firstLine(e);
      throw new Error(`cannot read the CA Secret ${this.namespace}/${this.name}: ${why}`);
    }
    if (s === undefined) return undefined;
    const d = s.data ?? {};
    const rootCert = unb64(d[CA_FILES.rootCert]);
    const rootKey = unb64(d[CA_FILES.rootKey]);
    const intCert = unb64(d[CA_FILES.intermediateCert]);
    const intKey = unb64(d[CA_FILES.intermediateKey]);
    if (rootCert === undefined || intCert === undefined || intKey === undefined) {
      throw new Error(
        `incomplete CA material in Secret ${this.namespace}/${this.name}: needs ${CA_FILES.rootCert}, ` +
          `${CA_FILES.intermediateCert}, ${CA_FILES.intermediateKey}`,
      );
    }
    return {
      version: 1,
      root: rootKey === undefined ? { certPem: rootCert } : { certPem: rootCert, keyPem: rootKey },
      intermediate: { certPem: intCert, keyPem: intKey },
    };
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
      await this.client.create(collectionPath('v1', 'secrets', this.namespace), {
        apiVersion: 'v1',
        kind: 'Secret',
        type: 'Opaque',
        metadata: {
          name: this.name,
          namespace: this.namespace,
          labels: { [MANAGED_BY_LABEL]: MANAGED_BY_VALUE, 'otoroshi.io/kind': 'ca' },
        },
        data,
      });
    } catch (e) {
      if (e instanceof KubeApiError && e.statusCode === 409)
        throw Object.assign(new Error(`CA Secret ${this.namespace}/${this.name} already exists`), { code: 'EEXIST' });
      throw new Error(`cannot create the CA Secret ${this.namespace}/${this.name}: ${firstLine(e)}`);
    }
  }
}
