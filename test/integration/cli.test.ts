// The tokenwarden command as operators run it: the built CLI in a child process, against a real
// file store, a real redis-server, a real OS keychain (gnome-keyring on a private bus) and the
// real oidc-provider fixture. Every stdout and stderr the children print is searched for tokens,
// secrets and the key at the end.
import { spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { copyFile, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createWarden, customSource, type TokenStore } from '../../src/index.js';
import { fileStore, keychainKey } from '../../src/node/index.js';
import { redisStore } from '../../src/redis/index.js';
import { bundleFixture } from '../support/children.js';
import { basicClient, clientCredential, useOidcServer } from '../support/harness.js';
import { BASIC_CLIENT_SECRET } from '../support/oidc-server.js';
import { useRedisServer } from '../support/redis-server.js';
import { findLeaks, SENTINEL } from '../support/sentinel.js';

const root = fileURLToPath(new URL('../../', import.meta.url));
const KEY = randomBytes(32).toString('base64url');
const OTHER_KEY = randomBytes(32).toString('base64url');

const server = useOidcServer();
const redis = useRedisServer();

/** Everything the children printed, and every secret that must not be in it. */
const printed: string[] = [];
const secrets: string[] = [KEY, OTHER_KEY, BASIC_CLIENT_SECRET, ...Object.values(SENTINEL)];

let bundleDir: string;
let cliPath: string;
let configPath: string;
let throwingConfigPath: string;
let dataDir: string;

beforeAll(async () => {
  // Inside the repository's node_modules, so that the bundle's external packages (ioredis,
  // @napi-rs/keyring) resolve as they do for the published dist/cli.js; the package.json beside
  // dist/ gives --version what the published package has.
  const cache = join(root, 'node_modules', '.cache');
  await mkdir(cache, { recursive: true });
  bundleDir = await mkdtemp(join(cache, 'tw-cli-test-'));
  await copyFile(join(root, 'package.json'), join(bundleDir, 'package.json'));
  cliPath = join(bundleDir, 'dist', 'cli.mjs');
  await build({
    entryPoints: [join(root, 'src/cli.ts')],
    outfile: cliPath,
    bundle: true,
    format: 'esm',
    platform: 'node',
    target: 'node20',
    logLevel: 'silent',
    external: ['ioredis', '@napi-rs/keyring'],
  });
  configPath = await bundleFixture(
    join(root, 'test/fixtures/cli-config.ts'),
    join(bundleDir, 'cli-config.mjs'),
  );
  throwingConfigPath = await bundleFixture(
    join(root, 'test/fixtures/cli-config-throws.ts'),
    join(bundleDir, 'cli-config-throws.mjs'),
  );
  dataDir = await mkdtemp(join(tmpdir(), 'tw-cli-'));
}, 30_000);

afterAll(async () => {
  await rm(bundleDir, { recursive: true, force: true });
  await rm(dataDir, { recursive: true, force: true });
});

interface Run {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

/** Runs `tokenwarden <args>` with the key in TOKENWARDEN_KEY unless `env` says otherwise. */
function cli(args: string[], env: Record<string, string | undefined> = {}): Promise<Run> {
  const base: Record<string, string | undefined> = { ...process.env, NODE_OPTIONS: '' };
  delete base['TOKENWARDEN_KEY'];
  const merged: Record<string, string | undefined> = { ...base, TOKENWARDEN_KEY: KEY, ...env };
  const childEnv: NodeJS.ProcessEnv = {};
  for (const [name, value] of Object.entries(merged))
    if (value !== undefined) childEnv[name] = value;
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [cliPath, ...args], {
      cwd: dataDir,
      env: childEnv,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
      stdout += chunk;
    });
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => {
      stderr += chunk;
    });
    child.on('error', reject);
    child.on('close', (code) => {
      printed.push(stdout, stderr);
      resolve({ code, stdout, stderr });
    });
  });
}

/** The environment the --config fixture reads. */
function configEnv(): Record<string, string> {
  const op = server();
  return {
    TW_ISSUER: op.issuer,
    TW_CLIENT_ID: op.clients.basic.clientId,
    TW_CLIENT_SECRET: BASIC_CLIENT_SECRET,
    TW_RESOURCE: op.resource.origin,
  };
}

function fingerprint(token: string): string {
  return createHash('sha256').update(token).digest('hex').slice(0, 16);
}

/** An orphan: a record written by a credential that no --config registers. */
async function writeLegacy(store: TokenStore): Promise<void> {
  const warden = createWarden({ store });
  const legacy = warden.register('legacy', {
    source: customSource(async () => ({
      accessToken: SENTINEL.accessToken,
      refreshToken: SENTINEL.refreshToken,
      expiresIn: 3600,
      scope: 'reports:read',
    })),
    origins: ['https://legacy.example.test'],
  });
  await legacy.getToken();
  await warden.close();
}

/** A loopback port nothing listens on. */
function closedPort(): Promise<number> {
  return new Promise((resolve) => {
    const probe = createServer().listen(0, '127.0.0.1', () => {
      const { port } = probe.address() as { port: number };
      probe.close(() => resolve(port));
    });
  });
}

let files = 0;

/**
 * A token file with two records: 'billing' (a client_credentials token from the oidc fixture,
 * registered by the --config fixture) and 'legacy' (an orphan).
 */
async function seedFile(): Promise<{ path: string; billingToken: string }> {
  files++;
  const path = join(dataDir, `tokens-${files}.json`);
  const warden = createWarden({ store: fileStore({ path, key: KEY }) });
  const billing = clientCredential(server(), warden, 'billing', basicClient(server()));
  const billingToken = (await billing.getToken()).reveal();
  secrets.push(billingToken);
  await warden.close();
  await writeLegacy(fileStore({ path, key: KEY }));
  return { path, billingToken };
}

type Entry = { id: string; registered: boolean; state: string; [key: string]: unknown };

async function inventoryJson(args: string[]): Promise<Entry[]> {
  const run = await cli(['inventory', ...args, '--json']);
  expect(run.code, run.stderr).toBe(0);
  return (JSON.parse(run.stdout) as { entries: Entry[] }).entries;
}

describe('inventory', () => {
  it('prints an aligned table of registered credentials and orphaned records', async () => {
    const { path, billingToken } = await seedFile();
    const run = await cli(['inventory', '--file', path, '--config', configPath], configEnv());
    expect(run.code, run.stderr).toBe(0);
    expect(run.stderr).toBe('');
    const lines = run.stdout.trimEnd().split('\n');
    expect(lines).toHaveLength(3);
    const [header, billing, legacy] = lines as [string, string, string];
    expect(header.split(/\s{2,}/)).toEqual([
      'ID',
      'STATE',
      'SOURCE',
      'SCOPES',
      'EXPIRES',
      'LAST USED',
      'FINGERPRINT',
    ]);
    // Aligned: every column starts where its header does.
    for (const column of ['STATE', 'SOURCE', 'FINGERPRINT']) {
      const at = header.indexOf(column);
      expect(billing[at - 1]).toBe(' ');
      expect(billing[at]).not.toBe(' ');
      expect(legacy[at]).not.toBe(' ');
    }
    expect(billing).toMatch(/^billing\s+valid\s+client_credentials\s/);
    expect(billing).toContain(fingerprint(billingToken));
    expect(billing).toMatch(/\d{4}-\d\d-\d\d \d\d:\d\dZ \(in \d+m\)/);
    expect(legacy).toMatch(/^legacy\s+orphaned\s+\(not registered\)\s+reports:read\s/);
    expect(legacy).toContain(fingerprint(SENTINEL.accessToken));
    expect(legacy).toMatch(/never\s+[0-9a-f]{16}$/);
  });

  it('prints JSON for scripts, with ISO times', async () => {
    const { path, billingToken } = await seedFile();
    const entries = await inventoryJson(['--file', path]);
    expect(entries.map((e) => [e.id, e.registered, e.state])).toEqual([
      ['billing', false, 'orphaned'],
      ['legacy', false, 'orphaned'],
    ]);
    const run = await cli(['inventory', '--file', path, '--config', configPath, '--json'], {
      ...configEnv(),
    });
    expect(run.code, run.stderr).toBe(0);
    const { entries: withConfig } = JSON.parse(run.stdout) as { entries: Entry[] };
    expect(withConfig[0]).toMatchObject({
      id: 'billing',
      registered: true,
      state: 'valid',
      sourceKind: 'client_credentials',
      issuer: server().issuer,
      fingerprint: fingerprint(billingToken),
      hasRefreshToken: false,
    });
    expect(withConfig[1]).toMatchObject({
      id: 'legacy',
      registered: false,
      state: 'orphaned',
      grantedScope: ['reports:read'],
      hasRefreshToken: true,
      fingerprint: fingerprint(SENTINEL.accessToken),
    });
    const expiresAt = withConfig[1]?.['expiresAt'] as string;
    expect(expiresAt).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
    expect(Date.parse(expiresAt) - Date.now()).toBeGreaterThan(3_500_000);
  });

  it('lists a tampered record as unreadable, and keeps it for the operator to look at', async () => {
    const { path } = await seedFile();
    const file = JSON.parse(await readFile(path, 'utf8')) as {
      records: Record<string, { sealed: string }>;
    };
    const record = file.records['legacy'] as { sealed: string };
    // A record copied under a crafted id does not open (records are bound to their id), and the
    // id must not reach the terminal as an escape sequence.
    file.records['evil\u001b[2J'] = { ...record };
    const parts = record.sealed.split('.');
    const ciphertext = parts[3] as string;
    parts[3] = `${ciphertext[0] === 'A' ? 'B' : 'A'}${ciphertext.slice(1)}`;
    record.sealed = parts.join('.');
    await writeFile(path, JSON.stringify(file));
    const before = await readFile(path);

    const entries = await inventoryJson(['--file', path]);
    expect(entries.map((e) => [e.id, e.state])).toEqual([
      ['billing', 'orphaned'],
      ['legacy', 'unreadable'],
      ['evil\u001b[2J', 'unreadable'],
    ]);
    expect(entries[1]).not.toHaveProperty('fingerprint');
    const table = await cli(['inventory', '--file', path]);
    expect(table.code).toBe(0);
    expect(table.stdout).toMatch(/^evil\?\[2J\s+unreadable\s/m);
    expect(table.stdout).not.toContain('\u001b');
    expect(await readFile(path)).toEqual(before);
  });

  it('says so, and exits 0, for a token file that does not exist', async () => {
    const run = await cli(['inventory', '--file', join(dataDir, 'missing.json')]);
    expect(run.code).toBe(0);
    expect(run.stdout).toBe('No credentials and no stored records.\n');
    expect(run.stderr).toMatch(/does not exist/);
  });
});

describe('audit', () => {
  it('reports the orphaned record and exits 1; 0 when nothing is found', async () => {
    const { path } = await seedFile();
    const run = await cli(['audit', '--file', path, '--config', configPath], configEnv());
    expect(run.code, run.stderr).toBe(1);
    const lines = run.stdout.trimEnd().split('\n');
    expect(lines[0]?.split(/\s{2,}/)).toEqual(['ID', 'FINDING', 'STATE', 'DETAIL', 'FINGERPRINT']);
    expect(lines.slice(1)).toEqual([expect.stringMatching(/^legacy\s+orphaned\s+orphaned\s/)]);

    const json = await cli(['audit', '--file', path, '--config', configPath, '--json'], {
      ...configEnv(),
    });
    expect(json.code).toBe(1);
    const { findings } = JSON.parse(json.stdout) as { findings: Record<string, unknown>[] };
    expect(findings).toEqual([
      expect.objectContaining({
        id: 'legacy',
        kind: 'orphaned',
        registered: false,
        action: 'none',
        fingerprint: fingerprint(SENTINEL.accessToken),
      }),
    ]);

    // The thresholds reach the audit: with --idle-for 0s the registered credential is unused.
    const idle = await cli(
      ['audit', '--file', path, '--config', configPath, '--idle-for', '0s', '--json'],
      configEnv(),
    );
    const kinds = (JSON.parse(idle.stdout) as { findings: { id: string; kind: string }[] })
      .findings;
    expect(kinds).toContainEqual(expect.objectContaining({ id: 'billing', kind: 'unused' }));

    const clean = await cli(['audit', '--file', join(dataDir, 'empty.json')]);
    expect(clean.code).toBe(0);
    expect(clean.stdout).toBe('No findings.\n');
  });

  it('--revoke deletes the orphaned record and leaves the registered one', async () => {
    const { path } = await seedFile();
    const run = await cli(
      ['audit', '--file', path, '--config', configPath, '--revoke', '--json'],
      configEnv(),
    );
    expect(run.code, run.stderr).toBe(1);
    const { findings } = JSON.parse(run.stdout) as { findings: Record<string, unknown>[] };
    expect(findings).toEqual([
      expect.objectContaining({ id: 'legacy', kind: 'orphaned', action: 'deleted' }),
    ]);
    expect((await inventoryJson(['--file', path])).map((e) => e.id)).toEqual(['billing']);

    const table = await cli(['audit', '--file', path, '--revoke']);
    // Without --config, billing is an orphan too: deleted, and the table says what was done.
    expect(table.code).toBe(1);
    expect(table.stdout).toMatch(/^billing\s+orphaned.*record deleted \(server not contacted\)$/m);
    expect(await inventoryJson(['--file', path])).toEqual([]);
  });
});

describe('revoke', () => {
  it('with --config: revokes at the authorization server (RFC 7009) and deletes the record', async () => {
    const op = server();
    const { path, billingToken } = await seedFile();
    expect((await op.introspect(billingToken))['active']).toBe(true);

    const run = await cli(['revoke', 'billing', '--file', path, '--config', configPath], {
      ...configEnv(),
    });
    expect(run.code, run.stderr).toBe(0);
    expect(run.stdout).toMatch(/^Revoked "billing" at the authorization server \(access_token\)/);
    expect((await op.introspect(billingToken))['active']).toBe(false);
    expect((await inventoryJson(['--file', path])).map((e) => e.id)).toEqual(['legacy']);
  });

  it('without --config: deletes the record, says the server was not contacted, exits 3', async () => {
    const op = server();
    const { path, billingToken } = await seedFile();
    const run = await cli(['revoke', 'billing', '--file', path]);
    expect(run.code).toBe(3);
    expect(run.stdout).toMatch(/The authorization server was NOT contacted/);
    expect((await op.introspect(billingToken))['active']).toBe(true);
    expect((await inventoryJson(['--file', path])).map((e) => e.id)).toEqual(['legacy']);

    const json = await cli(['revoke', 'legacy', '--file', path, '--json']);
    expect(json.code).toBe(3);
    expect(JSON.parse(json.stdout)).toEqual({
      id: 'legacy',
      registered: false,
      deleted: true,
      serverContacted: false,
      outcome: 'not-contacted',
      revokedAtServer: false,
    });
    expect(await inventoryJson(['--file', path])).toEqual([]);
  });

  it('with --config but an unreachable server: wipes the record, exits 3', async () => {
    const { path } = await seedFile();
    const port = await closedPort();
    const env = { ...configEnv(), TW_ISSUER: `http://127.0.0.1:${port}` };
    const run = await cli(['revoke', 'billing', '--file', path, '--config', configPath], env);
    expect(run.code, run.stderr).toBe(3);
    expect(run.stdout).toMatch(/did not confirm the revocation \(failed; access_token: ERR_/);
    expect((await inventoryJson(['--file', path])).map((e) => e.id)).toEqual(['legacy']);

    // Registered, but nothing stored any more: nothing to revoke.
    const again = await cli(['revoke', 'billing', '--file', path, '--config', configPath], env);
    expect(again.code).toBe(4);
    expect(again.stderr).toMatch(/is registered but has no stored token/);
  });

  it('exits 4 for an id with no credential and no record', async () => {
    const { path } = await seedFile();
    const before = await readFile(path);
    const run = await cli(['revoke', 'nobody', '--file', path]);
    expect(run.code).toBe(4);
    expect(run.stdout).toBe('');
    expect(run.stderr).toMatch(/^tokenwarden: No credential or stored record "nobody"/);
    expect(run.stderr.trimEnd().split('\n')).toHaveLength(1);
    expect(await readFile(path)).toEqual(before);
  });
});

describe('a key or store that cannot be used: exit 5, and nothing changes', () => {
  it('a wrong key is an error, never an empty store or a wiped file', async () => {
    const { path } = await seedFile();
    const before = await readFile(path);
    for (const command of [['inventory'], ['audit', '--revoke'], ['revoke', 'legacy']]) {
      const run = await cli([...command, '--file', path], { TOKENWARDEN_KEY: OTHER_KEY });
      expect(run.code, command.join(' ')).toBe(5);
      expect(run.stderr).toMatch(
        /sealed under a key that the key in TOKENWARDEN_KEY does not open/,
      );
      expect(await readFile(path)).toEqual(before);
    }
    // The right key still opens everything.
    expect((await inventoryJson(['--file', path])).map((e) => e.id)).toEqual(['billing', 'legacy']);
  });

  it('an unset or malformed key, a key in another variable, a corrupt file', async () => {
    const { path } = await seedFile();
    const before = await readFile(path);
    const unset = await cli(['audit', '--file', path, '--revoke'], { TOKENWARDEN_KEY: undefined });
    expect(unset.code).toBe(5);
    expect(unset.stderr).toMatch(/TOKENWARDEN_KEY is not set/);
    const malformed = await cli(['audit', '--file', path, '--revoke'], {
      TOKENWARDEN_KEY: 'short',
    });
    expect(malformed.code).toBe(5);
    expect(malformed.stderr).toMatch(/does not hold a usable key/);
    expect(await readFile(path)).toEqual(before);

    const other = await cli(['inventory', '--file', path, '--key-env', 'APP_KEY', '--json'], {
      TOKENWARDEN_KEY: undefined,
      APP_KEY: KEY,
    });
    expect(other.code, other.stderr).toBe(0);

    const corrupt = join(dataDir, 'corrupt.json');
    await writeFile(corrupt, '{"v":2,"seq":');
    const run = await cli(['audit', '--file', corrupt, '--revoke']);
    expect(run.code).toBe(5);
    expect(run.stderr).toMatch(/ERR_STORE_CORRUPT|not valid JSON/);
    expect(await readFile(corrupt, 'utf8')).toBe('{"v":2,"seq":');
  });
});

describe('usage', () => {
  it.each([
    [[]],
    [['frobnicate', '--file', 'x.json']],
    [['inventory']],
    [['inventory', '--file', 'x.json', '--redis', 'redis://127.0.0.1:1']],
    [['inventory', '--file', 'x.json', '--bogus']],
    [['inventory', '--file', 'x.json', '--revoke']],
    [['inventory', '--file', 'x.json', '--key-env', 'K', '--keychain', 'svc']],
    [['audit', '--file', 'x.json', '--idle-for', 'soon']],
    [['revoke', '--file', 'x.json']],
    [['revoke', 'a', 'b', '--file', 'x.json']],
    [['inventory', '--redis', 'http://127.0.0.1:1']],
    [['inventory', '--file', 'x.json', '--prefix', 'p:']],
  ])('exits 2 with one line on stderr: %j', async (args) => {
    const run = await cli(args);
    expect(run.code).toBe(2);
    expect(run.stdout).toBe('');
    expect(run.stderr).toMatch(/^tokenwarden: \S.*\n$/);
  });

  it('--help, help <command> and --version', async () => {
    const help = await cli(['--help']);
    expect(help.code).toBe(0);
    expect(help.stdout).toMatch(/^Usage: tokenwarden <command>/);
    expect(help.stdout).toMatch(/Exit codes:\n {2}0 {3}success/);
    const revoke = await cli(['help', 'revoke']);
    expect(revoke.code).toBe(0);
    expect(revoke.stdout).toMatch(/^Usage: tokenwarden revoke <id>/);
    expect((await cli(['audit', '--help'])).stdout).toMatch(/--idle-for <duration>/);
    const version = await cli(['--version']);
    const pkg = JSON.parse(await readFile(join(root, 'package.json'), 'utf8')) as {
      version: string;
    };
    expect(version).toMatchObject({ code: 0, stdout: `${pkg.version}\n` });
  });

  it('a --config module that is missing or throws: exit 6, and its message is not shown', async () => {
    const missing = await cli(['inventory', '--file', 'x.json', '--config', './nope.mjs']);
    expect(missing.code).toBe(6);
    expect(missing.stderr).toMatch(/cannot be loaded/);
    const throws = await cli(['inventory', '--file', 'x.json', '--config', throwingConfigPath]);
    expect(throws.code).toBe(6);
    expect(throws.stderr).toMatch(/^tokenwarden: The --config function failed: Error \(/m);
  });
});

describe('a Redis store', () => {
  it('lists, audits and revokes records in Redis', async () => {
    const prefix = 'tw-cli-test:';
    const client = new Redis({ port: redis().port, host: '127.0.0.1' });
    client.on('error', () => {});
    try {
      await writeLegacy(redisStore({ client, key: KEY, prefix }));
    } finally {
      client.disconnect();
    }
    const url = redis().url;
    const entries = await inventoryJson(['--redis', url, '--prefix', prefix]);
    expect(entries).toEqual([
      expect.objectContaining({ id: 'legacy', state: 'orphaned', registered: false }),
    ]);
    // Another prefix is another store; the URL can come from the environment.
    const fromEnv = await cli(['inventory', '--redis-env', 'REDIS_URL', '--json'], {
      REDIS_URL: url,
    });
    expect(fromEnv.code, fromEnv.stderr).toBe(0);
    expect(JSON.parse(fromEnv.stdout)).toEqual({ entries: [] });

    const wrongKey = await cli(['inventory', '--redis', url, '--prefix', prefix], {
      TOKENWARDEN_KEY: OTHER_KEY,
    });
    expect(wrongKey.code).toBe(5);

    const audit = await cli(['audit', '--redis', url, '--prefix', prefix]);
    expect(audit.code).toBe(1);
    expect(audit.stdout).toMatch(/^legacy\s+orphaned/m);

    const revoke = await cli(['revoke', 'legacy', '--redis', url, '--prefix', prefix]);
    expect(revoke.code).toBe(3);
    expect(revoke.stdout).toMatch(
      /^Deleted the stored record of "legacy" from the redis 127\.0\.0\.1:/,
    );
    expect(await inventoryJson(['--redis', url, '--prefix', prefix])).toEqual([]);
  });

  it('exits 5 when Redis cannot be reached, and never prints the URL’s password', async () => {
    const port = await closedPort();
    const password = 'tw-sentinel-redis-pw-8Hq2';
    secrets.push(password);
    const run = await cli(['inventory', '--redis', `redis://:${password}@127.0.0.1:${port}`]);
    expect(run.code).toBe(5);
    expect(run.stderr).toMatch(/^tokenwarden: .*redis 127\.0\.0\.1:\d+/);
  });
});

describe('a key in the OS keychain', () => {
  it('opens a file store sealed with keychainKey; a service without a key is exit 5', async () => {
    const { startSecretService } = await import('../support/keyring.js');
    const bus = await startSecretService();
    try {
      const service = `tokenwarden-cli-test-${randomBytes(4).toString('hex')}`;
      const path = join(dataDir, 'keychain-tokens.json');
      await writeLegacy(fileStore({ path, key: keychainKey({ service }) }));
      const env = { ...bus.childEnv(), TOKENWARDEN_KEY: undefined };

      const run = await cli(['inventory', '--file', path, '--keychain', service, '--json'], env);
      expect(run.code, run.stderr).toBe(0);
      expect(JSON.parse(run.stdout).entries).toEqual([
        expect.objectContaining({ id: 'legacy', fingerprint: fingerprint(SENTINEL.accessToken) }),
      ]);

      const before = await readFile(path);
      const other = await cli(['inventory', '--file', path, '--keychain', `${service}-typo`], env);
      expect(other.code).toBe(5);
      expect(other.stderr).toMatch(/The keychain has no tokenwarden key for service/);
      expect(await readFile(path)).toEqual(before);
    } finally {
      await bus.stop();
    }
  });
});

describe('output', () => {
  it('never holds a token, a client secret, a password or the key (sentinel search)', () => {
    expect(printed.length).toBeGreaterThan(40);
    expect(findLeaks(printed, secrets)).toEqual([]);
  });
});
