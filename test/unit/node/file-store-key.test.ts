// envKey(): the file store's key from an environment variable (issue 3, "Keys").
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { inspect } from 'node:util';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { TokenWardenError } from '../../../src/errors.js';
import { envKey } from '../../../src/node/env-key.js';
import { fileStore } from '../../../src/node/file-store.js';
import { TokenSet } from '../../../src/token.js';
import { findLeaks } from '../../support/sentinel.js';

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'tw-env-key-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

let counter = 0;
const variables: string[] = [];
/** A variable name no other test uses, removed after the test. */
function variable(value?: string): string {
  const name = `TW_TEST_ENV_KEY_${process.pid}_${++counter}`;
  variables.push(name);
  if (value !== undefined) process.env[name] = value;
  return name;
}
afterEach(() => {
  for (const name of variables.splice(0)) delete process.env[name];
});

function recordOf(accessToken: string) {
  const now = Date.now();
  return {
    tokens: new TokenSet({ accessToken, expiresAt: now + 3_600_000, issuedAt: now }),
    meta: { createdAt: now, refreshedAt: now, uses: 0, refreshes: 1 },
  };
}

async function failure(promise: Promise<unknown>): Promise<TokenWardenError> {
  try {
    await promise;
  } catch (error) {
    expect(error).toBeInstanceOf(TokenWardenError);
    return error as TokenWardenError;
  }
  throw new Error('expected a rejection');
}

describe('envKey', () => {
  it('reads a base64url key at first use, not at creation', async () => {
    const name = variable();
    const provider = envKey(name);
    expect(provider.kind).toBe('env');
    process.env[name] = randomBytes(32).toString('base64url');
    const { kid } = await provider.current();
    expect(kid).toMatch(/^[A-Za-z0-9_-]{16}$/);
    expect(await provider.find(kid)).toBeDefined();
  });

  it('fails with ERR_STORE_UNAVAILABLE naming the variable when it is unset', async () => {
    const name = variable();
    const error = await failure(envKey(name).current());
    expect(error.code).toBe('ERR_STORE_UNAVAILABLE');
    expect(error.message).toContain(name);
  });

  it.each([
    ['too short', randomBytes(16).toString('base64url')],
    ['too long', randomBytes(48).toString('base64url')],
    ['not base64url', `${randomBytes(32).toString('base64url').slice(0, 42)}*`],
    ['hex', randomBytes(32).toString('hex')],
  ])('fails with ERR_KEY_UNAVAILABLE for a key that is %s, never echoing it', async (_, value) => {
    const name = variable(value);
    const error = await failure(envKey(name).current());
    expect(error.code).toBe('ERR_KEY_UNAVAILABLE');
    expect(error.message).toContain(name);
    expect(findLeaks([error], [value])).toEqual([]);
  });

  it('recovers once the variable is set', async () => {
    const name = variable();
    const provider = envKey(name);
    await expect(provider.current()).rejects.toMatchObject({ code: 'ERR_STORE_UNAVAILABLE' });
    process.env[name] = randomBytes(32).toString('base64url');
    await expect(provider.current()).resolves.toMatchObject({ kid: expect.any(String) });
  });

  it('rejects names that cannot be variables', () => {
    for (const name of ['', 'A=B', 'A\u0000B', 42]) {
      expect(() => envKey(name as string)).toThrow(
        expect.objectContaining({ code: 'ERR_INVALID_ARGUMENT' }),
      );
    }
  });

  it('needs the new key to rotate', async () => {
    const name = variable(randomBytes(32).toString('base64url'));
    const provider = envKey(name);
    const before = await provider.current();
    await expect(provider.rotate()).rejects.toMatchObject({ code: 'ERR_INVALID_ARGUMENT' });
    const after = await provider.rotate(randomBytes(32));
    expect(after.kid).not.toBe(before.kid);
    expect((await provider.current()).kid).toBe(after.kid);
  });

  it('prints as redacted', async () => {
    const value = randomBytes(32).toString('base64url');
    const provider = envKey(variable(value));
    await provider.current();
    expect(findLeaks([provider, inspect(provider), JSON.stringify(provider)], [value])).toEqual([]);
  });

  describe('under a file store', () => {
    it('seals and opens records, and survives a restart with the same variable', async () => {
      const path = join(dir, 'ok.json');
      const name = variable(randomBytes(32).toString('base64url'));
      await fileStore({ path, key: envKey(name) }).set('billing', recordOf('stored'));
      const reopened = fileStore({ path, key: envKey(name) });
      expect((await reopened.get('billing'))?.tokens.revealAccessToken()).toBe('stored');
    });

    it('keeps the file when the variable is unset: a process without it reads nothing', async () => {
      const path = join(dir, 'kept.json');
      const value = randomBytes(32).toString('base64url');
      const name = variable(value);
      await fileStore({ path, key: envKey(name) }).set('billing', recordOf('stored'));
      delete process.env[name];
      const error = await failure(fileStore({ path, key: envKey(name) }).get('billing'));
      expect(error.code).toBe('ERR_STORE_UNAVAILABLE');
      expect(error.message).toContain(name);
      expect(existsSync(path)).toBe(true);
      process.env[name] = value;
      expect(
        (await fileStore({ path, key: envKey(name) }).get('billing'))?.tokens.revealAccessToken(),
      ).toBe('stored');
    });

    it('reads nothing and deletes nothing when the variable holds an unusable key', async () => {
      const path = join(dir, 'kept.json');
      const good = randomBytes(32).toString('base64url');
      const name = variable(good);
      await fileStore({ path, key: envKey(name) }).set('billing', recordOf('stored'));
      const before = await readFile(path);
      process.env[name] = 'not-a-key';
      const error = await failure(fileStore({ path, key: envKey(name) }).get('billing'));
      expect(error.code).toBe('ERR_KEY_UNAVAILABLE');
      expect(error.message).toContain(name);
      // Other processes sharing the file may have the right key: the file stays as it was.
      expect(await readFile(path)).toEqual(before);
      process.env[name] = good;
      expect(
        (await fileStore({ path, key: envKey(name) }).get('billing'))?.tokens.revealAccessToken(),
      ).toBe('stored');
    });

    it('rotateKey(newKey) re-seals under the new key, for the next start to supply', async () => {
      const path = join(dir, 'rotated.json');
      const name = variable(randomBytes(32).toString('base64url'));
      const store = fileStore({ path, key: envKey(name) });
      await store.set('billing', recordOf('stored'));
      const next = randomBytes(32).toString('base64url');
      await store.rotateKey(next);
      process.env[name] = next;
      expect(
        (await fileStore({ path, key: envKey(name) }).get('billing'))?.tokens.revealAccessToken(),
      ).toBe('stored');
    });
  });
});
