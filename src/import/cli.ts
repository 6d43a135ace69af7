// `otoroshi-xds import FILE.json [--namespace NS] [--out FILE]`: the export as CRD YAML.
import { promises as fs } from 'node:fs';
import YAML from 'yaml';
import { ImportError, importOtoroshiExport, type ImportedObject } from './otoroshi-export.js';

/** Multi-document YAML, one object per document, in the export's order. */
export function toYamlDocuments(objects: readonly ImportedObject[]): string {
  return objects.map((o) => `---\n${YAML.stringify(o, { lineWidth: 0, aliasDuplicateObjects: false })}`).join('');
}

interface Out {
  write(s: string): unknown;
}

/** Exit code: 0 converted (notes on stderr), 2 when the file cannot be read or is not an export. */
export async function runImport(
  file: string,
  flags: { namespace?: string; out?: string },
  out: Out,
  err: Out,
): Promise<number> {
  let json: unknown;
  try {
    json = JSON.parse(await fs.readFile(file, 'utf8'));
  } catch (e) {
    err.write(`otoroshi-xds import: cannot read ${file}: ${e instanceof Error ? e.message : String(e)}\n`);
    return 2;
  }
  let result;
  try {
    result = importOtoroshiExport(json, flags.namespace !== undefined ? { namespace: flags.namespace } : {});
  } catch (e) {
    if (!(e instanceof ImportError)) throw e;
    err.write(`otoroshi-xds import: ${file}: ${e.message}\n`);
    return 2;
  }
  const yaml = toYamlDocuments(result.objects);
  if (flags.out !== undefined) await fs.writeFile(flags.out, yaml, { mode: 0o600 });
  else out.write(yaml);
  for (const n of result.notes) err.write(`note: ${n}\n`);
  err.write(
    `${result.objects.length} object(s) written${flags.out !== undefined ? ` to ${flags.out}` : ''}, ` +
      `${result.notes.length} note(s)\n`,
  );
  return 0;
}
