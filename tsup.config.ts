import { defineConfig } from 'tsup';

export default defineConfig({
  entry: {
    index: 'src/index.ts',
    browser: 'src/browser/index.ts',
    node: 'src/node/index.ts',
    redis: 'src/redis/index.ts',
    otel: 'src/otel/index.ts',
    cli: 'src/cli/main.ts',
  },
  format: ['esm'],
  target: 'es2022',
  platform: 'neutral',
  dts: { compilerOptions: { ignoreDeprecations: '6.0' } },
  sourcemap: true,
  clean: true,
  treeshake: true,
  // Keep `node:` specifiers: bare 'crypto' or 'fs' could resolve to a userland package.
  removeNodeProtocol: false,
  external: [
    'ky',
    'jose',
    'idb-keyval',
    'eventemitter3',
    '@napi-rs/keyring',
    '@opentelemetry/api',
    'ioredis',
    /^node:/,
  ],
});
