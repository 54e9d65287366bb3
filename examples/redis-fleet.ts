// A fleet of service instances that share one credential through Redis: every instance runs this
// script; whichever needs a new token first refreshes under a Redis lock, stores the new set
// (sealed) and announces it, and the others take it over, so a rotating refresh token is
// redeemed once per rotation however many instances there are.
//
//   npm run build   # the examples import the package, `tokenwarden`, from dist/
//   export REDIS_URL=redis://127.0.0.1:6379
//   export TOKENWARDEN_KEY=$(node -e "console.log(crypto.randomBytes(32).toString('base64url'))")
//   export ISSUER=https://auth.example.com CLIENT_ID=ledger-sync CLIENT_SECRET=... \
//     REFRESH_TOKEN=... LEDGER_API=https://ledger.example.com
//   npx tsx examples/redis-fleet.ts & npx tsx examples/redis-fleet.ts & wait
//
// REDIS_URL        the Redis every instance shares (the optional peer dependency `ioredis`)
// TOKENWARDEN_KEY  32 random bytes, base64url: the same sealing key on every instance
// ISSUER, CLIENT_ID, CLIENT_SECRET, REFRESH_TOKEN
//                  a refresh token obtained elsewhere (e.g. an admin's consent), rotating
// LEDGER_API       the API's origin: the only origin the token is sent to
import { setTimeout } from 'node:timers/promises';
import { Redis } from 'ioredis';
import { createWarden, isTokenWardenError, refreshToken } from 'tokenwarden';
import { envKey } from 'tokenwarden/node';
import { redisStore } from 'tokenwarden/redis';

function required(name: string): string {
  const value = process.env[name];
  if (!value) throw new Error(`Set ${name}; see the header of examples/redis-fleet.ts.`);
  return value;
}

const ledgerApi = required('LEDGER_API');
// No offline queue: when Redis is down, store calls fail fast (ERR_STORE_UNAVAILABLE) instead of
// queueing, and no instance refreshes without the lock.
const redis = new Redis(required('REDIS_URL'), { enableOfflineQueue: false });

const warden = createWarden({
  store: redisStore({ client: redis, key: envKey('TOKENWARDEN_KEY'), prefix: 'ledger:' }),
});
const ledger = warden.register('ledger', {
  source: refreshToken({
    issuer: required('ISSUER'),
    clientId: required('CLIENT_ID'),
    clientSecret: required('CLIENT_SECRET'),
    // Used only while the store holds no set yet: a rotated refresh token in Redis wins over it.
    refreshToken: required('REFRESH_TOKEN'),
  }),
  origins: [ledgerApi],
});

warden.on('refresh', ({ reason, rotated }) =>
  // 'shared': another instance refreshed, this one took the stored set over.
  console.info(`pid ${process.pid}: refresh (${reason}${rotated ? ', rotated' : ''})`),
);
warden.on('anomaly', ({ kind, severity }) =>
  console.warn(`pid ${process.pid}: ${kind} (${severity})`),
);

// Runs for a minute, or until the instance is told to stop (Ctrl-C, or the SIGTERM of a
// deployment): then it closes the warden and Redis instead of dying mid-refresh.
const shutdown = new AbortController();
for (const signal of ['SIGINT', 'SIGTERM'] as const) process.once(signal, () => shutdown.abort());
const stop = AbortSignal.any([AbortSignal.timeout(60_000), shutdown.signal]);
while (!stop.aborted) {
  try {
    const response = await ledger.fetch(new URL('/v1/balance', ledgerApi));
    console.info(`pid ${process.pid}: ${response.status}`);
  } catch (error) {
    if (!isTokenWardenError(error)) throw error;
    console.error(`pid ${process.pid}: ${error.code}`); // e.g. ERR_STORE_UNAVAILABLE while Redis is down
  }
  await setTimeout(5_000, undefined, { signal: stop }).catch(() => {});
}

const { refreshes } = warden.metrics().credentials['ledger'] ?? {};
console.info(`pid ${process.pid}: refreshes`, refreshes);
await warden.close();
redis.disconnect();
