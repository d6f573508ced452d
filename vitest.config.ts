import { defineConfig } from 'vitest/config';

// Two projects run one after the other: every test, then the Redis key hygiene check, which must see the
// whole run. test/global-setup.ts gives the run its Redis prefix and key audit.
const HYGIENE = 'test/redis/key-hygiene.test.ts';

export default defineConfig({
  test: {
    testTimeout: 60_000,
    hookTimeout: 60_000,
    pool: 'forks',
    maxWorkers: 2,
    reporters: ['default'],
    globalSetup: ['test/global-setup.ts'],
    projects: [
      { extends: true, test: { name: 'tests', include: ['test/**/*.test.ts'], exclude: [HYGIENE], sequence: { groupOrder: 0 } } },
      { extends: true, test: { name: 'redis-hygiene', include: [HYGIENE], sequence: { groupOrder: 1 } } },
    ],
  },
});
