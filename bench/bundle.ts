// Scenario 6: bundle size. Each library's browser entry, and a minimal app that creates its
// client, bundled in this run with esbuild (browser platform, ES2022, minified, every dependency
// included, as an app that uses no other auth library ships it), measured minified and gzipped
// (node:zlib, level 9). tokenwarden is bundled from its source, so the figures are this checkout's.
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';
import { build } from 'esbuild';
import { scenario } from './lib/results.js';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');

interface Target {
  readonly library: string;
  readonly what: string;
  readonly source: string;
}

const targets: Target[] = [
  { library: 'tokenwarden', what: 'entry: tokenwarden', source: `export * from './src/index.ts';` },
  {
    library: 'tokenwarden',
    what: 'entry: tokenwarden/browser',
    source: `export * from './src/browser/index.ts';`,
  },
  {
    library: 'tokenwarden',
    what: 'app: sign-in, IndexedDB store, ky client',
    source: [
      `import { authorizationCode, createWarden } from './src/index.ts';`,
      `import { indexedDbStore } from './src/browser/index.ts';`,
      `const signIn = authorizationCode({ issuer: 'https://auth.example.com', clientId: 'spa', redirectUri: location.origin + '/cb' });`,
      `const warden = createWarden({ store: indexedDbStore() });`,
      `const me = warden.register('me', { source: signIn, origins: ['https://api.example.com'] });`,
      `export const api = me.ky({ prefix: 'https://api.example.com/' });`,
      `export { signIn };`,
    ].join('\n'),
  },
  {
    // The counterpart of axios + axios-auth-refresh: an app's own token service, no sign-in.
    library: 'tokenwarden',
    what: 'app: customSource, fetch only',
    source: [
      `import { createWarden, customSource } from './src/index.ts';`,
      `const warden = createWarden();`,
      `export const api = warden.register('api', {`,
      `  source: customSource(async () => (await fetch('/token')).json()),`,
      `  origins: ['https://api.example.com'],`,
      `}).fetch;`,
    ].join('\n'),
  },
  { library: 'oidc-client-ts', what: 'entry', source: `export * from 'oidc-client-ts';` },
  {
    library: 'oidc-client-ts',
    what: 'app: UserManager',
    source: [
      `import { UserManager } from 'oidc-client-ts';`,
      `export const mgr = new UserManager({ authority: 'https://auth.example.com', client_id: 'spa', redirect_uri: location.origin + '/cb' });`,
    ].join('\n'),
  },
  { library: '@auth0/auth0-spa-js', what: 'entry', source: `export * from '@auth0/auth0-spa-js';` },
  {
    library: '@auth0/auth0-spa-js',
    what: 'app: createAuth0Client',
    source: [
      `import { createAuth0Client } from '@auth0/auth0-spa-js';`,
      `export const client = createAuth0Client({ domain: 'auth.example.com', clientId: 'spa' });`,
    ].join('\n'),
  },
  { library: '@okta/okta-auth-js', what: 'entry', source: `export * from '@okta/okta-auth-js';` },
  {
    library: '@okta/okta-auth-js',
    what: 'app: OktaAuth',
    source: [
      `import { OktaAuth } from '@okta/okta-auth-js';`,
      `export const auth = new OktaAuth({ issuer: 'https://auth.example.com/oauth2/default', clientId: 'spa' });`,
    ].join('\n'),
  },
  { library: '@azure/msal-browser', what: 'entry', source: `export * from '@azure/msal-browser';` },
  {
    library: '@azure/msal-browser',
    what: 'app: PublicClientApplication',
    source: [
      `import { PublicClientApplication } from '@azure/msal-browser';`,
      `export const app = new PublicClientApplication({ auth: { clientId: 'spa' } });`,
    ].join('\n'),
  },
  {
    library: 'axios + axios-auth-refresh',
    what: 'entry',
    source: `export * from 'axios'; export * from 'axios-auth-refresh';`,
  },
  {
    library: 'axios + axios-auth-refresh',
    what: 'app: instance + createAuthRefresh',
    source: [
      `import axios from 'axios';`,
      `import createAuthRefresh from 'axios-auth-refresh';`,
      `export const api = axios.create({ baseURL: 'https://api.example.com/' });`,
      `createAuthRefresh(api, async () => {});`,
    ].join('\n'),
  },
];

async function size(source: string): Promise<{ minified: number; gzip: number }> {
  const result = await build({
    stdin: { contents: source, resolveDir: root, sourcefile: 'app.ts', loader: 'ts' },
    bundle: true,
    format: 'esm',
    platform: 'browser',
    target: 'es2022',
    minify: true,
    write: false,
    logLevel: 'silent',
    define: { 'process.env.NODE_ENV': '"production"' },
  });
  const code = result.outputFiles[0]?.contents ?? new Uint8Array();
  return { minified: code.byteLength, gzip: gzipSync(code, { level: 9 }).byteLength };
}

async function version(library: string): Promise<string> {
  if (library === 'tokenwarden') return 'this checkout';
  const names = library.split(' + ');
  const versions = await Promise.all(
    names.map(async (name) => {
      const { readFile } = await import('node:fs/promises');
      const manifest = JSON.parse(
        await readFile(join(root, 'node_modules', name, 'package.json'), 'utf8'),
      ) as { version: string };
      return `${name}@${manifest.version}`;
    }),
  );
  return versions.join(' + ');
}

async function main(): Promise<void> {
  const run = scenario('bundle');
  const results = [];
  for (const target of targets) {
    results.push({
      library: target.library,
      version: await version(target.library),
      what: target.what,
      ...(await size(target.source)),
    });
  }
  const app = results.find((r) => r.what.startsWith('app: sign-in'));
  const withRatio = results.map((r) => ({
    ...r,
    gzipVsTokenwardenApp: app ? Math.round((r.gzip / app.gzip) * 100) / 100 : null,
  }));
  console.table(
    withRatio.map((r) => ({
      library: r.library,
      what: r.what,
      'min kB': (r.minified / 1000).toFixed(1),
      'gzip kB': (r.gzip / 1000).toFixed(1),
      '× tw app': r.gzipVsTokenwardenApp,
    })),
  );
  await run.write({
    bundler: `esbuild ${(await import('esbuild')).version}`,
    results: withRatio,
  });
}

await main();
