#!/usr/bin/env node
// Writes src/model/spec-validators.generated.cjs: the ajv validators of src/model/schemas.ts compiled
// ahead of time. Usage: npm run build && node scripts/gen-spec-validators.mjs
// (test/spec-validators.test.ts checks for drift).
import fs from 'node:fs';
import path from 'node:path';
import { SPEC_SCHEMAS } from '../dist/src/model/schemas.js';
import { generatedPath, specValidatorsSource } from '../dist/src/model/spec-validators.js';

const file = generatedPath();
fs.writeFileSync(file, specValidatorsSource(SPEC_SCHEMAS));
console.log(`wrote ${path.relative(process.cwd(), file)}`);
