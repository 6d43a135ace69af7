// File mode: Certificates and ApiKeys with exportSecret are written under <data-dir>/secrets/<ns>/<name>/.
import path from 'node:path';
import type { Logger } from 'pino';
import type { Audit } from '../audit.js';
import { exportSecretsToFiles } from '../ca/file-export.js';
import { apikeySecrets, certificateSecrets } from '../k8s/secret-exporter.js';
import type { Model, StoredObject } from '../model/types.js';

export function exportSecretFiles(
  dataDir: string,
  model: Model,
  objects: readonly StoredObject[],
  audit: Audit,
  logger: Logger,
): void {
  try {
    const secrets = [...apikeySecrets(model.apikeys, objects), ...certificateSecrets(model.certificates, objects)].map(
      (d) => ({
        namespace: d.namespace,
        name: d.name,
        data: d.data,
        owner: `${d.owner.kind}/${d.owner.namespace}/${d.owner.name}`,
        ownerNamespace: d.owner.namespace,
      }),
    );
    const r = exportSecretsToFiles(path.join(dataDir, 'secrets'), secrets);
    for (const n of r.written) audit.emit('secret.exported', { secret: n, to: 'file' });
    for (const n of r.removed) audit.emit('secret.deleted', { secret: n, to: 'file' });
    for (const n of r.refused) logger.warn({ secret: n }, 'exportSecret refused');
  } catch (err) {
    logger.warn({ err: (err as Error).message }, 'cannot export secrets to files');
  }
}
