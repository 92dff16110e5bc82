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
    ],
  },
})
