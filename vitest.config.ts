import { cloudflareTest } from '@cloudflare/vitest-plugin'
import { defineConfig } from 'vitest/config'

export default defineConfig({
  test: {
    projects: [
      {
        test: {
          name: 'unit',
          include: ['test/**/*.test.ts'],
          exclude: ['test/workerd/**', 'test/e2e/**'],
          environment: 'node',
          testTimeout: 60_000,
        },
      },
      {
        plugins: [
          cloudflareTest({
            wrangler: { configPath: './wrangler.toml' },
            miniflare: {
              // The optional R2 bucket for large memory blobs (worker/memory-offload.ts; also in
              // wrangler.toml), local to miniflare; the 8 MiB threshold keeps the other tests'
              // memories in SQLite (test/workerd/memory-offload.test.ts lowers it).
              r2Buckets: ['MEMORY_BUCKET'],
              bindings: {
                API_KEYS: JSON.stringify({
                  'dev-key-stepkv-0000000000000000': 'dev',
                  'dev-key-other-tenant-0000000000': 'other',
                }),
              },
            },
          }),
        ],
        test: { name: 'workerd', include: ['test/workerd/**/*.test.ts'], testTimeout: 120_000, hookTimeout: 120_000 },
      },
      {
        test: {
          name: 'e2e',
          include: ['test/e2e/**/*.test.ts'],
          environment: 'node',
          testTimeout: 240_000,
          hookTimeout: 240_000,
          fileParallelism: false,
        },
      },
    ],
  },
})
