// A static API key sent in a custom header, rotated by a callback before it expires (or when the
// API answers 401), and revoked at its provider on shutdown.
//
//   npm run build   # the examples import the package, `tokenwarden`, from dist/
//   SEARCH_API_KEY=... SEARCH_API=https://search.example.com \
//   KEY_SERVICE=https://keys.example.com npx tsx examples/api-key.ts
//
// SEARCH_API_KEY  the current key (a new one is asked for from KEY_SERVICE when it expires)
// SEARCH_API      the search API's origin: the only origin the key is sent to
// KEY_SERVICE     an in-house service that issues keys: POST /keys -> { key, expiresAt },
//                 DELETE /keys/current revokes the key sent in its X-API-Key header
import { apiKey, createWarden, isTokenWardenError } from 'tokenwarden';

function required(name: string): string {
  const value = process.env[name];
  if (!value) throw new Error(`Set ${name}; see the header of examples/api-key.ts.`);
  return value;
}

const searchApi = required('SEARCH_API');
const keyService = required('KEY_SERVICE');

const warden = createWarden();
const search = warden.register('search', {
  source: apiKey({
    key: required('SEARCH_API_KEY'),
    header: 'X-API-Key', // sent raw in this header; never in a URL, never after a cross-origin redirect
    expiresAt: Date.now() + 24 * 3_600_000, // rotate within a day, as the provider asks
    rotate: async ({ signal }) => {
      // Runs like a token refresh: once for all concurrent callers, with backoff on failure.
      const response = await fetch(new URL('/keys', keyService), { method: 'POST', signal });
      if (!response.ok) throw new Error(`the key service answered ${response.status}`);
      const { key, expiresAt } = (await response.json()) as { key: string; expiresAt: number };
      return { key, expiresAt };
    },
    revoke: async ({ signal, revealKey }) => {
      // The key in use (rotate may have replaced the one configured), in a header only.
      const response = await fetch(new URL('/keys/current', keyService), {
        method: 'DELETE',
        headers: { 'x-api-key': revealKey() },
        signal,
      });
      if (!response.ok) throw new Error(`the key service answered ${response.status}`);
    },
  }),
  origins: [searchApi],
});

warden.on('refresh', ({ expiresAt }) =>
  console.info(`search: new key until ${new Date(expiresAt).toISOString()}`),
);

try {
  const response = await search.fetch(new URL('/v1/query', searchApi), {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ q: 'tokens' }),
  });
  console.info(`search: ${response.status}`, await response.json());
} catch (error) {
  if (!isTokenWardenError(error)) throw error;
  console.error(error.code, error.message);
} finally {
  // A short-lived job: revoke the key it used, then let the process exit.
  const { outcome } = await search.revoke();
  console.info(`search key: ${outcome}`);
  await warden.close();
}
