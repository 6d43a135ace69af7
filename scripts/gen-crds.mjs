#!/usr/bin/env node
// Writes manifests/crds/*.yaml from the ajv schemas (src/model/schemas.ts) via src/k8s/crds.ts.
// Usage: npm run build && node scripts/gen-crds.mjs   (test/k8s-manifests.test.ts checks for drift)
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { renderCrdFiles } from '../dist/src/k8s/crds.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const dir = path.join(root, 'manifests', 'crds');
fs.mkdirSync(dir, { recursive: true });
const files = renderCrdFiles();
for (const [file, text] of files) fs.writeFileSync(path.join(dir, file), text);
console.log(`wrote ${files.size} files to ${path.relative(root, dir)}/`);
