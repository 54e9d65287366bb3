// Tests what ships (run `npm run build` first): packs the package as `npm publish` would, lints
// the tarball with publint and @arethetypeswrong/cli, installs it into a scratch project, imports
// every entry from ESM in Node, runs the `tokenwarden` executable, checks that bundlers keep the
// Node-only entries out of browser builds, and type-checks every entry under
// `moduleResolution: bundler` and `node16`. Nothing here reads src/: only the tarball counts.
//
// Usage: tsx scripts/check-package.ts [--keep]   (--keep leaves the scratch directory behind)
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const bin = (name: string) => join(root, 'node_modules', '.bin', name);
// The repo's TypeScript, so the declarations are checked with the version they were built by.
const tsc = join(root, 'node_modules', 'typescript', 'bin', 'tsc');
const manifest = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as {
  version: string;
  exports: Record<string, unknown>;
  devDependencies: Record<string, string>;
};

const checks: { name: string; ok: boolean }[] = [];

/** Runs a command, echoing it and its output; returns the output, or throws when it fails. */
function run(command: string, args: string[], cwd: string, { quiet = false } = {}): string {
  console.log(`$ ${[command, ...args].map((arg) => arg.replace(work, '$TMP')).join(' ')}`);
  const output = execFileSync(command, args, {
    cwd,
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, FORCE_COLOR: '0', NO_COLOR: '1' },
  });
  if (output.trim() && !quiet) console.log(output.trimEnd());
  return output;
}

async function check(name: string, body: () => unknown): Promise<void> {
  console.log(`\n--- ${name}`);
  try {
    await body();
    checks.push({ name, ok: true });
    console.log(`--- ${name}: ok`);
  } catch (error) {
    const failure = error as { stdout?: string; stderr?: string; message?: string };
    for (const text of [failure.stdout, failure.stderr]) if (text?.trim()) console.log(text);
    console.log(`--- ${name}: FAILED: ${failure.message ?? String(error)}`);
    checks.push({ name, ok: false });
  }
}

const work = mkdtempSync(join(tmpdir(), 'tokenwarden-package-'));
const app = join(work, 'app');
let tarball = '';

// The entries users import; './package.json' is checked apart, as it is data, not code.
const entries = Object.keys(manifest.exports)
  .filter((subpath) => subpath !== './package.json')
  .map((subpath) => 'tokenwarden' + subpath.slice(1));

await check('npm pack', () => {
  const [packed] = JSON.parse(
    run('npm', ['pack', '--json', '--pack-destination', work], root, {
      quiet: true,
    }),
  ) as {
    filename: string;
    files: { path: string }[];
  }[];
  tarball = join(work, packed!.filename);
  const files = packed!.files.map((file) => file.path);
  const required = [
    'package.json',
    'README.md',
    'LICENSE',
    'SECURITY.md',
    'CHANGELOG.md',
    'dist/cli.js',
    ...['index', 'browser/index', 'node/index', 'redis/index', 'otel/index'].flatMap((name) => [
      `dist/${name}.js`,
      `dist/${name}.d.ts`,
    ]),
  ];
  const missing = required.filter((file) => !files.includes(file));
  // Only the build and the documents above belong in the package: no sources, tests or secrets.
  const stray = files.filter((file) => !file.startsWith('dist/') && !required.includes(file));
  if (missing.length > 0) throw new Error(`missing from the tarball: ${missing.join(', ')}`);
  if (stray.length > 0) throw new Error(`unexpected in the tarball: ${stray.join(', ')}`);
  console.log(`${packed!.filename}: ${files.length} files`);
});

await check('publint --strict', () => run(bin('publint'), ['--strict', tarball], root));

// The package is ESM only (`"type": "module"`, no `require` condition), so a CommonJS
// `require()` (attw's node16-from-CJS) and the pre-exports node10 resolution cannot load it
// by design; the esm-only profile ignores exactly those two and checks node16 from ESM and
// bundler resolution for every entry.
await check('attw --profile esm-only', () =>
  run(bin('attw'), ['--profile', 'esm-only', '--format', 'table-flipped', tarball], root),
);

await check('install the tarball into a scratch project', () => {
  mkdirSync(app);
  writeFileSync(
    join(app, 'package.json'),
    JSON.stringify({ name: 'scratch', private: true, type: 'module' }, null, 2),
  );
  // The runtime dependencies come from npm's cache, filled by the repo's own `npm ci`.
  run('npm', ['install', tarball, '--no-audit', '--no-fund', '--prefer-offline'], app);
});

const smoke = `
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const withPeers = process.argv[2] === 'with-peers';
const loaded = {};
for (const entry of ENTRIES) {
  try {
    loaded[entry] = await import(entry);
    console.log(entry + ': ' + Object.keys(loaded[entry]).length + ' exports');
  } catch (error) {
    // Without its optional peer, tokenwarden/otel cannot load; with it, it must.
    if (!withPeers && entry === 'tokenwarden/otel' && error.code === 'ERR_MODULE_NOT_FOUND' &&
        error.message.includes('@opentelemetry/api')) {
      console.log(entry + ': needs @opentelemetry/api, as documented');
      continue;
    }
    throw error;
  }
}
const { createWarden, apiKey, TokenWardenError, isTokenWardenError } = loaded['tokenwarden'];
assert.equal(typeof createWarden, 'function');
assert.equal(typeof loaded['tokenwarden/browser'].indexedDbStore, 'function');
assert.equal(typeof loaded['tokenwarden/node'].fileStore, 'function');
assert.equal(typeof loaded['tokenwarden/redis'].redisStore, 'function');
assert.ok(isTokenWardenError(new TokenWardenError('ERR_INVALID_ARGUMENT', 'checked')));
const pkg = JSON.parse(readFileSync(new URL(import.meta.resolve('tokenwarden/package.json')), 'utf8'));
assert.equal(pkg.name, 'tokenwarden');

// One real request through the built code: a loopback API sees the key in a header only, and a
// token persisted by the file store never appears in the file.
const KEY = 'sentinel-key-' + Math.random().toString(36).slice(2);
const seen = [];
const server = createServer((req, res) => {
  seen.push({ url: req.url, headers: JSON.stringify(req.headers) });
  res.end('ok');
});
await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
const origin = 'http://127.0.0.1:' + server.address().port;
const dir = mkdtempSync(join(tmpdir(), 'tokenwarden-smoke-'));
const { fileStore } = loaded['tokenwarden/node'];
const store = fileStore({ path: join(dir, 'tokens.jwe'), key: new Uint8Array(32).fill(7) });
const warden = createWarden({ store });
const instrumentation = withPeers ? loaded['tokenwarden/otel'].instrumentWarden(warden) : undefined;
const api = warden.register('api', { source: apiKey({ key: KEY }), origins: [origin] });
const res = await api.fetch(origin + '/ping?x=1');
assert.equal(await res.text(), 'ok');
assert.equal(seen.length, 1);
assert.ok(seen[0].headers.includes(KEY), 'the key travels in a header');
assert.ok(!seen[0].url.includes(KEY), 'the key is not in the URL');
assert.ok(!String(await api.getToken()).includes(KEY), 'a token prints redacted');
assert.equal(warden.metrics().credentials.api.requests, 1);
instrumentation?.close();
await warden.close();
server.close();
rmSync(dir, { recursive: true, force: true });
console.log('a request through the installed package carried the key in a header only');
`.replace('ENTRIES', JSON.stringify(entries));

await check('import every entry from ESM (no optional peers installed)', () => {
  writeFileSync(join(app, 'smoke.mjs'), smoke);
  run(process.execPath, ['smoke.mjs', 'without-peers'], app);
});

await check('tokenwarden --version', () => {
  const printed = run(join(app, 'node_modules', '.bin', 'tokenwarden'), ['--version'], app);
  if (!printed.includes(manifest.version)) {
    throw new Error(`printed ${JSON.stringify(printed.trim())}, not ${manifest.version}`);
  }
});

// Browser bundlers must refuse the Node-only entries ("browser": null) and bundle the others.
await check('bundle for browsers: node and redis excluded, the rest bundled', async () => {
  for (const entry of entries) {
    const nodeOnly = entry === 'tokenwarden/node' || entry === 'tokenwarden/redis';
    const bundled = await build({
      stdin: { contents: `export * from '${entry}';`, resolveDir: app, loader: 'js' },
      bundle: true,
      platform: 'browser',
      format: 'esm',
      write: false,
      logLevel: 'silent',
      external: ['@opentelemetry/api'],
    }).then(
      () => true,
      () => false,
    );
    console.log(`${entry}: ${bundled ? 'bundled' : 'refused'} for the browser`);
    if (bundled === nodeOnly) throw new Error(`${entry} should ${nodeOnly ? 'not ' : ''}bundle`);
  }
});

await check('install the optional peers and import every entry again', () => {
  const peers = ['@opentelemetry/api', 'ioredis', '@types/node'].map(
    (name) => `${name}@${manifest.devDependencies[name]}`,
  );
  run('npm', ['install', ...peers, '--no-audit', '--no-fund', '--prefer-offline'], app);
  run(process.execPath, ['smoke.mjs', 'with-peers'], app);
});

// What a user's code sees: every entry's declarations, used the way the README uses them.
const usage = `
import {
  apiKey,
  clientCredentials,
  createWarden,
  type Credential,
  isTokenWardenError,
  memoryStore,
  type MetricsSnapshot,
} from 'tokenwarden';
import { indexedDbStore } from 'tokenwarden/browser';
import { envKey, fileStore } from 'tokenwarden/node';
import { redisStore } from 'tokenwarden/redis';
import { instrumentWarden } from 'tokenwarden/otel';
import { Redis } from 'ioredis';

export const browserWarden = createWarden({ store: indexedDbStore({ fallback: 'memory' }) });
export const nodeWarden = createWarden({ store: fileStore({ path: 't.jwe', key: envKey('K') }) });
export const fleet = createWarden({
  store: redisStore({ client: new Redis({ lazyConnect: true }), key: envKey('K') }),
});
const warden = createWarden({ store: memoryStore() });
export const billing: Credential = warden.register('billing', {
  source: clientCredentials({ issuer: 'https://auth.example.com', clientId: 'c', clientSecret: 's' }),
  origins: ['https://billing.example.com'],
});
export const keyed = warden.register('keyed', {
  source: apiKey({ key: 'k', header: 'X-API-Key' }),
  origins: ['https://api.example.com'],
});
export const response: Promise<Response> = billing.fetch('https://billing.example.com/v1/ping');
export const invoices: Promise<unknown> = billing.ky({ prefix: 'https://billing.example.com/' }).get('invoices').json();
export const snapshot: MetricsSnapshot = warden.metrics();
export const instrumentation: { close(): void } = instrumentWarden(warden);
export const guarded: boolean = isTokenWardenError(new Error('x'));
// @ts-expect-error: a credential needs a source and its origins
warden.register('broken', {});
`;

for (const resolution of ['bundler', 'node16'] as const) {
  await check(`type-check every entry (moduleResolution ${resolution})`, () => {
    const config = {
      compilerOptions: {
        module: resolution === 'bundler' ? 'esnext' : 'node16',
        moduleResolution: resolution,
        target: 'es2022',
        lib: ['es2022', 'dom', 'dom.iterable'],
        types: ['node'],
        strict: true,
        exactOptionalPropertyTypes: true,
        verbatimModuleSyntax: true,
        // Check the shipped declarations themselves, not only what this file uses of them.
        skipLibCheck: false,
        noEmit: true,
      },
      files: ['usage.ts'],
    };
    writeFileSync(join(app, 'usage.ts'), usage);
    writeFileSync(join(app, `tsconfig.${resolution}.json`), JSON.stringify(config, null, 2));
    run(process.execPath, [tsc, '-p', `tsconfig.${resolution}.json`], app);
  });
}

if (process.argv.includes('--keep')) console.log(`\nscratch directory kept: ${work}`);
else rmSync(work, { recursive: true, force: true });

const failed = checks.filter((entry) => !entry.ok);
console.log(
  `\npackage checks: ${checks.length - failed.length} passed, ${failed.length} failed` +
    (failed.length ? ` (${failed.map((entry) => entry.name).join('; ')})` : ''),
);
process.exit(failed.length ? 1 : 0);
