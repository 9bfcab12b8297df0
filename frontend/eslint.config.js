// ESLint for the web app (`npm run lint`, and `make lint`). Warnings fail
// the run too (`--max-warnings 0` in package.json): a finding is fixed, or
// disabled on its line with the reason why the rule is wrong there.
import { fileURLToPath } from 'node:url';

import js from '@eslint/js';
import { defineConfig, globalIgnores } from 'eslint/config';
import reactHooks from 'eslint-plugin-react-hooks';
import reactRefresh from 'eslint-plugin-react-refresh';
import globals from 'globals';
import tseslint from 'typescript-eslint';

export default defineConfig([
  globalIgnores(['dist/', 'coverage/', 'e2e/artifacts/']),

  // The app, its tests and the Vite config: TypeScript, checked with types.
  {
    files: ['**/*.{ts,tsx}'],
    extends: [
      js.configs.recommended,
      tseslint.configs.recommendedTypeChecked,
      // The React Compiler's rules too (refs, purity, set-state-in-effect, …).
      reactHooks.configs.flat['recommended-latest'],
      reactRefresh.configs.vite,
    ],
    languageOptions: {
      globals: globals.browser,
      parserOptions: {
        projectService: true,
        tsconfigRootDir: fileURLToPath(new URL('.', import.meta.url)),
      },
    },
    rules: {
      'react-hooks/rules-of-hooks': 'error',
      // The preset only warns; a missing dependency is a stale value.
      'react-hooks/exhaustive-deps': 'error',
      // Types are imported as types (erased from the bundle, as isolatedModules wants).
      '@typescript-eslint/consistent-type-imports': ['error', { fixStyle: 'inline-type-imports' }],
      eqeqeq: ['error', 'always'],
      'no-console': 'error',
    },
  },

  // Tests may export helpers next to components and need not be fast-refreshed.
  {
    files: ['src/**/*.test.{ts,tsx}', 'src/test/**'],
    rules: { 'react-refresh/only-export-components': 'off' },
  },

  // Plain JavaScript run by Node: this file and the end-to-end test.
  {
    files: ['**/*.{js,mjs}'],
    extends: [js.configs.recommended],
    languageOptions: { sourceType: 'module', globals: globals.node },
    rules: { eqeqeq: ['error', 'always'] },
  },
]);
