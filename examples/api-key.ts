// A static API key sent in a custom header, rotated by a callback before it expires, and a
// token from an in-house service through customSource.
import { apiKey, createWarden, customSource } from 'tokenwarden';

declare function fetchNewKeyFromVault(): Promise<{ key: string; expiresAt: number }>;
declare function mintInternalToken(): Promise<string>;

const warden = createWarden();

const search = warden.register('search', {
  source: apiKey({
    key: process.env.SEARCH_API_KEY ?? '',
    header: 'X-API-Key',
    expiresAt: Date.now() + 24 * 3600_000,
    rotate: async () => fetchNewKeyFromVault(),
  }),
  origins: ['https://search.example.com'],
});

const internal = warden.register('internal', {
  source: customSource(async () => ({ accessToken: await mintInternalToken(), expiresIn: 300 })),
  origins: ['https://internal.example.com'],
});

const hits = await search.fetch('https://search.example.com/v1/query', {
  method: 'POST',
  body: JSON.stringify({ q: 'tokens' }),
});
console.log(hits.status, (await internal.fetch('https://internal.example.com/health')).status);
await warden.close();
