// The clients compared, each written the way its documentation shows. Every client sends
// `Authorization: Bearer <token>` to `<origin>/api/<name>/...` and reads the JSON body.
//
// - raw fetch: a static header, no token handling at all (the floor).
// - ky + hand-written hook: a `beforeRequest` hook that sets the header from a variable, and an
//   `afterResponse` hook that fetches a new token on 401 and retries, as in ky's readme.
// - axios + axios-auth-refresh: a request interceptor that sets the header, and
//   `createAuthRefresh`, which fetches a new token on 401 and retries (the peer's own readme).
// - tokenwarden: a warden (metrics on, as shipped) with one credential; its `fetch`, or its `ky`.
import axios, { type AxiosInstance } from 'axios';
import createAuthRefresh, { type AxiosAuthRefreshOptions } from 'axios-auth-refresh';
import ky from 'ky';
import {
  type CredentialTuning,
  clientCredentials,
  createWarden,
  customFetch,
  customSource,
  type Warden,
} from '../../src/index.js';

export interface Client {
  readonly name: string;
  /** GETs `path` (below `/api/<name>/`) and returns the parsed JSON body. */
  get(path: string): Promise<unknown>;
  close(): Promise<void>;
}

export interface ClientSetup {
  /** The client's name, also its path on the server and its token endpoint. */
  readonly name: string;
  readonly origin: string;
  /** The fetch to send with (a stub, or the global fetch). */
  readonly fetch?: typeof fetch;
  /** A fixed token instead of a token endpoint (for the in-process stub). */
  readonly staticToken?: string;
}

interface TokenAnswer {
  access_token: string;
}

async function fetchToken(setup: ClientSetup, via: typeof fetch): Promise<string> {
  if (setup.staticToken !== undefined) return setup.staticToken;
  const res = await via(`${setup.origin}/token/${setup.name}`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: 'grant_type=client_credentials&client_id=bench&client_secret=bench-secret',
  });
  return ((await res.json()) as TokenAnswer).access_token;
}

export async function rawFetch(setup: ClientSetup): Promise<Client> {
  const send = setup.fetch ?? globalThis.fetch;
  const headers = { authorization: `Bearer ${await fetchToken(setup, send)}` };
  const base = `${setup.origin}/api/${setup.name}/`;
  return {
    name: setup.name,
    get: async (path) => (await send(base + path, { headers })).json(),
    close: async () => {},
  };
}

/**
 * `shareRefresh`: concurrent 401s wait for one token request (a promise kept while it runs), as a
 * careful hand-written hook would; by default each 401 fetches its own token, as ky's readme does.
 */
export function kyHook(setup: ClientSetup, { shareRefresh = false } = {}): Client {
  const send = setup.fetch ?? globalThis.fetch;
  let token: string | undefined;
  let refreshing: Promise<string> | undefined;
  const refresh = (): Promise<string> => {
    if (!shareRefresh) return fetchToken(setup, send);
    refreshing ??= fetchToken(setup, send).finally(() => {
      refreshing = undefined;
    });
    return refreshing;
  };
  const api = ky.create({
    prefix: `${setup.origin}/api/${setup.name}/`,
    fetch: send,
    hooks: {
      beforeRequest: [
        async ({ request }) => {
          token ??= await fetchToken(setup, send);
          request.headers.set('Authorization', `Bearer ${token}`);
        },
      ],
      afterResponse: [
        async ({ request, response }) => {
          if (response.status !== 401) return;
          token = await refresh();
          request.headers.set('Authorization', `Bearer ${token}`);
          return ky(request, { fetch: send });
        },
      ],
    },
  });
  return { name: setup.name, get: (path) => api.get(path).json(), close: async () => {} };
}

/**
 * `options` go to `createAuthRefresh`. Its default `deduplicateRefresh: true` rejects the 401s that
 * arrive while a refresh runs; `deduplicateRefresh: false` lets them wait for that refresh.
 */
export function axiosRefresh(
  setup: ClientSetup,
  adapter: 'fetch' | 'http' = 'fetch',
  options: AxiosAuthRefreshOptions = {},
): Client {
  let token: string | undefined;
  const instance: AxiosInstance = axios.create({
    baseURL: `${setup.origin}/api/${setup.name}/`,
    adapter,
    ...(setup.fetch === undefined ? {} : { env: { fetch: setup.fetch } }),
  });
  const obtain = async () => {
    if (setup.staticToken !== undefined) return setup.staticToken;
    const { data } = await axios.post<TokenAnswer>(
      `${setup.origin}/token/${setup.name}`,
      'grant_type=client_credentials&client_id=bench&client_secret=bench-secret',
      { adapter, headers: { 'content-type': 'application/x-www-form-urlencoded' } },
    );
    return data.access_token;
  };
  instance.interceptors.request.use(async (config) => {
    token ??= await obtain();
    config.headers.set('Authorization', `Bearer ${token}`);
    return config;
  });
  createAuthRefresh(
    instance,
    async (failed: { response: { config: { headers: Headers } } }) => {
      token = await obtain();
      failed.response.config.headers.set('Authorization', `Bearer ${token}`);
    },
    options,
  );
  return {
    name: setup.name,
    get: async (path) => (await instance.get(path)).data,
    close: async () => {},
  };
}

export interface WardenClient extends Client {
  readonly warden: Warden;
  /** Refreshes so far, by reason (`initial` and `forced` ones are waited for; others are not). */
  readonly refreshes: Record<string, number>;
}

/** tokenwarden: `fetch` or `ky` of one credential, with the warden's defaults (metrics on). */
export function tokenwarden(
  setup: ClientSetup,
  via: 'fetch' | 'ky',
  tuning: CredentialTuning = {},
): WardenClient {
  const warden = createWarden(setup.fetch === undefined ? {} : { [customFetch]: setup.fetch });
  const { staticToken } = setup;
  const source =
    staticToken !== undefined
      ? customSource(async () => ({ accessToken: staticToken, expiresIn: 86_400 }))
      : clientCredentials({
          tokenEndpoint: `${setup.origin}/token/${setup.name}`,
          clientId: 'bench',
          clientSecret: 'bench-secret',
        });
  const credential = warden.register(setup.name, {
    source,
    origins: [setup.origin],
    ...tuning,
  });
  const refreshes: Record<string, number> = {};
  warden.on('refresh', ({ reason }) => {
    refreshes[reason] = (refreshes[reason] ?? 0) + 1;
  });
  const base = `${setup.origin}/api/${setup.name}/`;
  const api = credential.ky({ prefix: base });
  return {
    name: setup.name,
    warden,
    refreshes,
    get:
      via === 'ky'
        ? (path) => api.get(path).json()
        : async (path) => (await credential.fetch(base + path)).json(),
    close: () => warden.close(),
  };
}
