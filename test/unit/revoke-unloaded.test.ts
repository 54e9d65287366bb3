// credential.revoke() loads its server code on first use. When that load fails (a browser chunk
// missing after a deploy), the tokens are still wiped and the result says the server part failed.
import { describe, expect, it, vi } from 'vitest';
import { createWarden, customSource, memoryStore } from '../../src/index.js';
import { findLeaks, SENTINEL } from '../support/sentinel.js';

vi.mock('../../src/revoke.js', () => {
  throw new Error('Failed to fetch dynamically imported module: /assets/revoke-abc123.js');
});

describe('revoke() when its code cannot be loaded', () => {
  it('wipes the tokens, never rejects, and reports the revocation as failed', async () => {
    const store = memoryStore();
    const warden = createWarden({ store });
    const revokes: unknown[] = [];
    warden.on('revoke', (event) => revokes.push(event));
    const revoke = vi.fn();
    const cred = warden.register('internal', {
      source: customSource(async () => ({ accessToken: SENTINEL.accessToken, expiresIn: 300 }), {
        revoke,
      }),
      origins: ['https://api.example.com'],
    });
    await cred.getToken();
    const result = await cred.revoke();
    expect(revoke).not.toHaveBeenCalled();
    expect(result).toMatchObject({
      outcome: 'failed',
      revokedAtServer: false,
      tokens: [],
      wipedLocally: true,
    });
    expect(result.failures.map((f) => [f.token, f.code])).toEqual([
      ['access_token', 'ERR_NETWORK'],
    ]);
    expect(result.failures[0]?.error.message).toMatch(/could not be loaded; the tokens were wiped/);
    expect(await store.get('internal')).toBeUndefined();
    expect(cred.status().state).toBe('empty');
    expect(revokes).toHaveLength(1);
    expect(findLeaks([result, revokes], Object.values(SENTINEL))).toEqual([]);
    await warden.close();
  });
});
