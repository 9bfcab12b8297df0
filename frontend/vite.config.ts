import { defineConfig } from 'vitest/config';
import react from '@vitejs/plugin-react';

// In development the API, the event streams, the photos and the WebSocket are proxied
// to the backend, so the app is same-origin and needs no CORS.
const backend = process.env.BACKEND_URL ?? 'http://127.0.0.1:8080';

export default defineConfig({
  plugins: [react()],
  server: {
    proxy: {
      '/api': backend,
      '/events': backend,
      '/media': backend,
      '/ws': { target: backend.replace(/^http/, 'ws'), ws: true },
    },
  },
  build: {
    outDir: 'dist',
    sourcemap: true,
    rollupOptions: {
      output: {
        // Libraries change less often than the app: separate files cache longer.
        manualChunks: {
          react: ['react', 'react-dom', 'react-router-dom'],
          data: ['@tanstack/react-query', 'axios'],
          forms: ['react-hook-form', '@hookform/resolvers', 'zod'],
          // Loaded with the auction room's chart only (React.lazy).
          charts: ['recharts'],
        },
      },
    },
  },
  test: {
    environment: 'jsdom',
    setupFiles: ['./src/test/setup.ts'],
    include: ['src/**/*.test.{ts,tsx}'],
    restoreMocks: true,
    globals: true,
    // `npm run test:coverage` (make test-web): fails under 80 % of lines.
    // Report in coverage/index.html.
    coverage: {
      provider: 'v8',
      // The app's own code only: the end-to-end test (e2e/) and the config
      // files are not unit-tested, so they stay out of the measure.
      include: ['src/**/*.{ts,tsx}'],
      exclude: [
        // The tests and their setup are not what is measured.
        'src/**/*.test.{ts,tsx}',
        'src/test/**',
        // Only mounts <App> into index.html's #root; the end-to-end test runs it.
        'src/main.tsx',
        // The API's shapes: types only, nothing to run.
        'src/api/types.ts',
      ],
      reporter: ['text', 'html', 'json-summary'],
      reportsDirectory: 'coverage',
      thresholds: { lines: 80 },
    },
  },
});
