// @ts-check
'use strict';
// typescript-eslint over the whole tree, with the rules this codebase keeps
// (CONTRIBUTING: no `any`, nothing swallowed, no unused code). prettier owns
// the form; `npm run lint` runs both, and .ci/run fails on a finding.
const tseslint = require('typescript-eslint');

module.exports = tseslint.config(
  { ignores: ['dist/', 'node_modules/', 'bench/out/', 'soak/out/', 'coverage/'] },
  ...tseslint.configs.recommended,
  {
    rules: {
      '@typescript-eslint/no-unused-vars': [
        'error',
        { argsIgnorePattern: '^_', varsIgnorePattern: '^_', caughtErrors: 'none' },
      ],
      '@typescript-eslint/no-explicit-any': 'error',
      // A catch that does nothing must say why in a comment (the block is then not empty).
      'no-empty': ['error', { allowEmptyCatch: false }],
      eqeqeq: ['error', 'always', { null: 'ignore' }],
      'prefer-const': 'error',
    },
  },
  {
    // CommonJS by necessity: PM2 require()s the ecosystem file, and the shim and scripts share it.
    files: ['**/*.js'],
    rules: { '@typescript-eslint/no-require-imports': 'off' },
  },
);
