// Fleet members sharing a DPoP-bound credential through a real Redis share its key: one token
// request for the fleet, every instance's proofs verify against the key the token is bound to
// (cnf.jkt at a real oidc-provider), and Redis holds the key only sealed.
import { Redis } from 'ioredis';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { clientCredentials, createWarden, type Warden } from '../../src/index.js';
import { redisStore } from '../../src/redis/index.js';
import { type DpopResourceServer, startDpopResource } from '../support/dpop-resource.js';
import { useOidcServer } from '../support/harness.js';
import { useRedisServer } from '../support/redis-server.js';

const op = useOidcServer();
const redis = useRedisServer();
const KEY = new Uint8Array(32).fill(11);
let rs: DpopResourceServer;
const clients: Redis[] = [];
const wardens: Warden[] = [];

beforeAll(async () => {
  rs = await startDpopResource({ introspect: (token) => op().introspect(token) });
});
afterEach(async () => {
  await Promise.all(wardens.splice(0).map((w) => w.close()));
});
afterAll(async () => {
  await Promise.all(clients.splice(0).map((c) => c.quit().catch(() => {})));
  await rs?.close();
});

/** One fleet member: its own Redis connection, store and warden. */
function member(prefix: string) {
  const client = new Redis({ port: redis().port, host: '127.0.0.1', maxRetriesPerRequest: 1 });
  client.on('error', () => {});
  clients.push(client);
  const warden = createWarden({ store: redisStore({ client, key: KEY, prefix }) });
  wardens.push(warden);
  const { clientId, clientSecret } = op().clients.dpop;
  const credential = warden.register('ledger', {
    source: clientCredentials({ issuer: op().issuer, clientId, clientSecret }),
    origins: [rs.origin],
    dpop: true,
  });
  return { client, credential };
}

describe('a DPoP-bound credential shared by a fleet through Redis', () => {
  it('redeems one token for the fleet, and every member signs with its key', async () => {
    const prefix = `tw-dpop-fleet-${Date.now()}:`;
    const tokensBefore = op().tokenCounts('client_credentials').total;
    const from = rs.requests.length;
    const members = [member(prefix), member(prefix), member(prefix)];
    // The first one obtains the token; the others find it, and the key, in Redis.
    expect((await members[0]?.credential.fetch(`${rs.origin}/v1/a`))?.status).toBe(200);
    const results = await Promise.all(
      members.map((m, i) => m.credential.fetch(`${rs.origin}/v1/member/${i}`)),
    );
    expect(results.map((r) => r.status)).toEqual([200, 200, 200]);
    expect(op().tokenCounts('client_credentials').total - tokensBefore).toBe(1);

    const thumbprints = members.map((m) => m.credential.status().dpop?.thumbprint);
    expect(new Set(thumbprints).size).toBe(1);
    const records = rs.requests.slice(from);
    expect(records.every((r) => r.reason === 'ok')).toBe(true);
    // The token is bound (at the authorization server) to the one key all members prove.
    expect(new Set(records.map((r) => r.tokenJkt))).toEqual(new Set([thumbprints[0]]));
    expect(new Set(records.map((r) => r.proofJkt))).toEqual(new Set([thumbprints[0]]));

    // Redis holds the record sealed: no private key member, no token.
    const raw = (await members[0]?.client.keys(`${prefix}*`)) ?? [];
    const values = await Promise.all(raw.map((k) => members[0]?.client.get(k).catch(() => null)));
    const dump = JSON.stringify(values);
    expect(dump).not.toContain('"d"');
    expect(dump).not.toContain('"crv"');
    const token = (await members[0]?.credential.getToken())?.reveal() ?? '';
    expect(token.length).toBeGreaterThan(10);
    expect(dump).not.toContain(token);
  });
});
