// credential.fetch is a drop-in `fetch`: give it to any fetch-based client (openapi-fetch's
// `createClient({ fetch })`, Octokit's `request: { fetch }`, a GraphQL client's `fetch` option,
// your own) and that client's requests carry a fresh token, only to the allowed origins, with one
// refresh-and-retry on a 401. The client's own retries, timeouts and hooks keep working above it.
//
//   npm run build   # the examples import the package, `tokenwarden`, from dist/
//   ISSUER=https://auth.example.com CLIENT_ID=catalog-sync CLIENT_SECRET=... \
//   CATALOG_API=https://catalog.example.com npx tsx examples/fetch-client.ts
//
// ISSUER, CLIENT_ID, CLIENT_SECRET  a confidential client with the client credentials grant
// CATALOG_API                       the API's origin: the only origin the token is sent to
import ky from 'ky';
import { BlockedRequestError, clientCredentials, createWarden } from 'tokenwarden';

function required(name: string): string {
  const value = process.env[name];
  if (!value) throw new Error(`Set ${name}; see the header of examples/fetch-client.ts.`);
  return value;
}

const catalogApi = required('CATALOG_API');
const warden = createWarden();
const catalog = warden.register('catalog', {
  source: clientCredentials({
    issuer: required('ISSUER'),
    clientId: required('CLIENT_ID'),
    clientSecret: required('CLIENT_SECRET'),
  }),
  origins: [catalogApi],
});

/** A small typed client of the kind API SDKs generate: it only needs a `fetch`. */
function createCatalogClient(options: { baseUrl: string; fetch: typeof fetch }) {
  async function get<T>(path: string): Promise<T> {
    const response = await options.fetch(new URL(path, options.baseUrl), {
      headers: { accept: 'application/json' },
    });
    if (!response.ok) throw new Error(`GET ${path}: ${response.status}`);
    return (await response.json()) as T;
  }
  return {
    products: () => get<{ id: string; name: string }[]>('/v1/products'),
    product: (id: string) =>
      get<{ id: string; name: string }>(`/v1/products/${encodeURIComponent(id)}`),
  };
}

// 1. Any fetch-based client: pass the credential's fetch.
const client = createCatalogClient({ baseUrl: catalogApi, fetch: catalog.fetch });
const products = await client.products();
console.info(`${products.length} products`);

// 2. ky with your own hooks and retries: build it on the credential's fetch (catalog.ky() does
//    exactly this, with a prefix of your choice).
const api = ky.create({
  fetch: catalog.fetch,
  prefix: `${catalogApi}/v1/`,
  retry: { limit: 2, statusCodes: [502, 503, 504] },
  hooks: {
    afterResponse: [
      ({ response }) => {
        console.info(`${response.status} ${response.url}`); // ky sees no token
      },
    ],
  },
});
const first = products[0];
if (first) console.info(await api.get(`products/${encodeURIComponent(first.id)}`).json());

// 3. The policy holds whatever the client does: another origin gets no token.
try {
  await catalog.fetch('https://elsewhere.example.net/collect');
} catch (error) {
  if (!(error instanceof BlockedRequestError)) throw error;
  console.info(`refused: ${error.code}`); // ERR_ORIGIN_NOT_ALLOWED, and a 'blocked' event
}

await warden.close();
