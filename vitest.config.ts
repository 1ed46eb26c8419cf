import { defineConfig } from 'vitest/config'

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 60_000,
    hookTimeout: 120_000,
    // Interop suites start real registries on fixed loopback ports; run files one at a time.
    fileParallelism: false,
  },
})
