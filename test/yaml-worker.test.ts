// The YAML parser's worker threads: answers go to their own requests whichever worker parsed
// them, and a worker that dies (out of memory on a huge file) fails that file only.
import { test } from 'vitest';
import assert from 'node:assert/strict';
import { YamlParser } from '../src/sources/yaml-worker.js';
import { parseYamlFile } from '../src/sources/yaml.js';

function descriptorFile(n: number): string {
  const docs: string[] = [];
  for (let i = 0; i < 50; i++)
    docs.push(
      `apiVersion: proxy.otoroshi.io/v1\nkind: ServiceDescriptor\nmetadata:\n  name: f${n}-s${i}\n` +
        `spec:\n  hosts: [f${n}-s${i}.oto.tools]\n  targets: [{ url: "http://10.0.0.${i}:80" }]\n`,
    );
  return docs.join('---\n');
}

test('concurrent parses on two workers each get their own file back', async () => {
  const parser = new YamlParser(512, 2);
  try {
    const names = Array.from({ length: 8 }, (_, i) => `f${i}.yaml`);
    const results = await Promise.all(names.map((name, i) => parser.parse(name, descriptorFile(i))));
    results.forEach((r, i) => {
      assert.deepEqual(r, parseYamlFile(`f${i}.yaml`, descriptorFile(i), 0));
      assert.equal(r.objects.length, 50);
    });
  } finally {
    await parser.close();
  }
});

test('a worker that runs out of memory fails its file only; the next parse gets a new worker', async () => {
  const parser = new YamlParser(16, 2);
  try {
    const rows = '  - [a, b, c, d, e, f, g, h]\n'.repeat(600_000);
    const huge = `apiVersion: v1\nkind: ConfigMap\nmetadata: {name: big}\ndata:\n${rows}`;
    const [big, small] = await Promise.all([
      parser.parse('big.yaml', huge),
      parser.parse('small.yaml', descriptorFile(1)),
    ]);
    assert.equal(big.objects.length, 0);
    assert.match(
      big.errors[0]?.message ?? '',
      /^cannot parse: (Worker terminated due to reaching memory limit|the parser stopped)/,
    );
    assert.equal(big.errors[0]?.file, 'big.yaml');
    assert.equal(small.objects.length, 50);
    const after = await parser.parse('after.yaml', descriptorFile(2));
    assert.equal(after.objects.length, 50);
  } finally {
    await parser.close();
  }
});
