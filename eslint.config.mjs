// eslint (flat config): JavaScript's recommended rules and typescript-eslint's recommended set (syntax
// only, no type information: fast enough to run first in `npm test`); tsc --strict covers the types.
import js from '@eslint/js';
import globals from 'globals';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  {
    ignores: [
      'dist/**',
      'node_modules/**',
      '.cache/**',
      'tools/**',
      'e2e/**',
      'testdata/**',
      'examples/**',
      'src/model/spec-validators.generated.cjs',
    ],
  },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    files: ['**/*.{ts,mjs,js}'],
    languageOptions: { globals: { ...globals.node }, ecmaVersion: 2023, sourceType: 'module' },
    linterOptions: { reportUnusedDisableDirectives: 'error' },
    rules: {
      // Parsers and validators match control characters on purpose (NUL, CR/LF in headers and paths).
      'no-control-regex': 'off',
      // Errors are re-thrown as one user-facing line naming the file or field; the cause is summarised
      // in it, or left out on purpose (secret material, CA keys).
      'preserve-caught-error': 'off',
      // `let x = fallback; try { x = read() } catch {}` is the house pattern for optional reads.
      'no-useless-assignment': 'off',
      // A cleanup hook registered before the value exists reads it later: that `let` must stay.
      'prefer-const': ['error', { ignoreReadBeforeAssign: true }],
      // `_`-prefixed names are deliberately unused (placeholders in destructuring and callbacks).
      '@typescript-eslint/no-unused-vars': [
        'error',
        { argsIgnorePattern: '^_', varsIgnorePattern: '^_', caughtErrors: 'none', ignoreRestSiblings: true },
      ],
    },
  },
  {
    // Lines of at most 120 characters everywhere (prettier's printWidth; it cannot split strings or comments, this
    // rule catches those). URLs are the one exception: a link split across lines cannot be followed.
    files: ['**/*.{ts,mjs,js}'],
    rules: { 'max-len': ['error', { code: 120, ignoreUrls: true }] },
  },
  {
    // No function over 80 lines (blank lines and comments not counted): a longer one does several things, and each
    // becomes a named step. Not in test/: a test body (the `test(...)` callback) is one scenario told in order, from
    // setup to the user-visible assertions, and splitting it only scatters the story; its helpers live in
    // test/helpers and test/fixtures.
    files: ['src/**/*.ts', 'proto/**/*.ts', 'bench/**/*.ts', 'scripts/**/*.{ts,mjs}'],
    rules: { 'max-lines-per-function': ['error', { max: 80, skipBlankLines: true, skipComments: true, IIFEs: true }] },
  },
  {
    // Tests read into decoded JSON (proto3 JSON, admin answers) whose shape the assertions check.
    files: ['test/**/*.ts'],
    rules: { '@typescript-eslint/no-explicit-any': 'off' },
  },
);
