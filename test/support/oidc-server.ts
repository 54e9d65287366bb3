// A real OAuth 2.0 authorization server (oidc-provider) and a protected resource server, both
// on 127.0.0.1 with random ports, for integration tests. Nothing here is mocked: tokenwarden
// talks HTTP to the same code that runs in production deployments of oidc-provider.
import { randomBytes, randomUUID } from 'node:crypto';
import {
  createServer,
  type IncomingMessage,
  request,
  type Server,
  type ServerResponse,
} from 'node:http';
import type { AddressInfo } from 'node:net';
import { exportJWK, generateKeyPair, type JWK } from 'jose';
import Provider, { errors, type ProviderContext, type ProviderToken } from 'oidc-provider';

/** The test-only grant that mints a refresh token without a browser sign-in. */
export const MINT_REFRESH_GRANT = 'urn:test:mint-refresh';

/**
 * The public client of the device flow (RFC 8628): device_code + refresh_token grants. Its users
 * sign in through oidc-provider's own pages, so it needs `devInteractions: true`.
 */
export const DEVICE_CLIENT_ID = 'device-client';

/** A confidential client whose access tokens must be DPoP-bound (`dpop_bound_access_tokens`). */
export const DPOP_CLIENT_ID = 'dpop-client';

/** A client secret with every character RFC 6749 §2.3.1 form-encoding must handle. */
export const BASIC_CLIENT_SECRET = 'sentinel-secret %41:colon+plus space&amp=eq/slash';

/** Scopes the protected resource accepts (RFC 8707 resource indicator = its origin + '/'). */
export const RESOURCE_SCOPES = ['api:read', 'api:write'] as const;

/** Every HTTP request either server received, verbatim, for leak scans. */
export interface RecordedRequest {
  readonly method: string;
  /** Path and query as sent. */
  readonly url: string;
  readonly headers: Readonly<Record<string, string | string[] | undefined>>;
  /** The raw body as text (empty when none). */
  readonly body: string;
  readonly at: number;
}

/** One request to the token endpoint and how the server answered it. */
export interface TokenRequestRecord {
  /** `grant_type` from the form body, if any. */
  readonly grantType: string | undefined;
  readonly status: number;
  /** The OAuth `error` code of a non-200 answer. */
  readonly error: string | undefined;
  /** The client id, from the Basic header or the form, when present. */
  readonly clientId: string | undefined;
  /** The `refresh_token` parameter sent (refresh_token grant). Test data: a secret. */
  readonly sentRefreshToken: string | undefined;
  /** The `access_token` of a 200 answer. Test data: a secret. */
  readonly issuedAccessToken: string | undefined;
  /** The `refresh_token` of a 200 answer. Test data: a secret. */
  readonly issuedRefreshToken: string | undefined;
}

/** Counters for one grant type (or all of them). */
export interface TokenCounts {
  readonly total: number;
  readonly ok: number;
  readonly failed: number;
  /** Failures by OAuth `error` code (`invalid_grant`, ...), `http_<status>` when none. */
  readonly errors: Readonly<Record<string, number>>;
}

/** Access-token lifetimes in seconds; change them between tests with `setTtl`. */
export interface TokenTtls {
  /** Access tokens from the refresh_token grant and the test grant. */
  accessToken: number;
  /** Access tokens from the client_credentials grant. */
  clientCredentials: number;
}

/** Options for {@link startOidcServer}. */
export interface OidcServerOptions {
  /** Initial lifetimes, seconds. @default { accessToken: 300, clientCredentials: 300 } */
  readonly ttl?: Partial<TokenTtls>;
  /**
   * Public clients (`token_endpoint_auth_method: 'none'`) of single-page apps served from
   * `origin`. Their redirect URI (`origin + '/callback'`) puts `origin` on oidc-provider's CORS
   * allow-list for the token endpoint, and the resource server answers CORS requests from it.
   * @default []
   */
  readonly browserClients?: readonly BrowserClient[];
  /**
   * oidc-provider's development sign-in pages (any login is accepted, then a consent form), for
   * tests that sign a user in over HTTP, such as the device flow's.
   * @default false
   */
  readonly devInteractions?: boolean;
}

/** A public browser client, see {@link OidcServerOptions.browserClients}. */
export interface BrowserClient {
  readonly clientId: string;
  /** The page origin, e.g. `http://127.0.0.1:5173`. */
  readonly origin: string;
}

/** What {@link OidcServer.mintRefreshToken} returns. */
export interface MintedTokens {
  readonly refreshToken: string;
  readonly accessToken: string;
  readonly expiresIn: number;
  readonly grantId: string;
}

/** The protected resource server. */
export interface ResourceServer {
  /** `http://127.0.0.1:<port>` */
  readonly origin: string;
  /** The RFC 8707 resource indicator the provider knows it by: origin + '/'. */
  readonly resourceIndicator: string;
  /**
   * Every request received, in order. `GET /redirect?to=<url>` answers 307 to `<url>`, without
   * checking any token; every other path needs a valid bearer token.
   */
  readonly requests: RecordedRequest[];
  /** Status codes answered, in order (same indices as `requests`). */
  readonly statuses: number[];
  /**
   * Makes every authenticated request get this answer instead, whatever its token (e.g. 401
   * `invalid_token` for a token the server keeps rejecting, 403 `insufficient_scope`); `undefined`
   * restores normal validation.
   */
  setOverride(override: ResourceOverride | undefined): void;
}

/** A fixed answer of the resource server, see {@link ResourceServer.setOverride}. */
export interface ResourceOverride {
  readonly status: number;
  /** The `WWW-Authenticate` header to send, if any. */
  readonly wwwAuthenticate?: string;
}

/** The running fixture. */
export interface OidcServer {
  /** `http://127.0.0.1:<port>`; also the base URL. */
  readonly issuer: string;
  readonly url: string;
  readonly tokenEndpoint: string;
  readonly revocationEndpoint: string;
  readonly introspectionEndpoint: string;
  readonly clients: {
    /** client_secret_basic (or _post) with {@link BASIC_CLIENT_SECRET}; client_credentials. */
    readonly basic: { readonly clientId: string; readonly clientSecret: string };
    /** private_key_jwt; client_credentials. `privateKey` is an extractable ES256 key. */
    readonly jwt: {
      readonly clientId: string;
      readonly privateKey: CryptoKey;
      readonly privateJwk: JWK;
      readonly publicJwk: JWK;
    };
    /** client_secret_basic; refresh_token + the test grant. */
    readonly refresh: { readonly clientId: string; readonly clientSecret: string };
    /** public client (`none`); refresh_token + the test grant. */
    readonly public: { readonly clientId: string };
    /**
     * client_secret_basic; client_credentials, refresh_token + the test grant; its access
     * tokens must be DPoP-bound (`dpop_bound_access_tokens`): a token request without a proof
     * fails with invalid_grant.
     */
    readonly dpop: { readonly clientId: string; readonly clientSecret: string };
  };
  /** Every request the authorization server received (discovery, token, revocation, ...). */
  readonly requests: RecordedRequest[];
  /** Every token-endpoint request with its outcome. */
  readonly tokenRequests: TokenRequestRecord[];
  readonly resource: ResourceServer;
  /** Counts token-endpoint requests, optionally of one grant type only. */
  tokenCounts(grantType?: string): TokenCounts;
  /** Forgets every recorded request of both servers. */
  resetRecords(): void;
  /** Changes access-token lifetimes for tokens issued from now on. */
  setTtl(ttl: Partial<TokenTtls>): void;
  /**
   * Holds each token-endpoint request that arrives from now on for `ms` milliseconds at the
   * door, before oidc-provider sees it. A held request whose client disconnects meanwhile (a
   * killed process) is dropped: never processed, never in `tokenRequests`, so a refresh token it
   * carried stays unredeemed. `0` stops holding new requests (held ones wait out their time).
   */
  holdTokenRequests(ms: number): void;
  /** Token requests held at the door right now, and those dropped because their client left. */
  heldTokenRequests(): { readonly waiting: number; readonly dropped: number };
  /**
   * Calls the test grant over HTTP and returns a fresh refresh token (rotating on every use)
   * and access token. Counts as a token request of grant type {@link MINT_REFRESH_GRANT}.
   */
  mintRefreshToken(options?: {
    client?: 'refresh' | 'public' | 'dpop';
    /** A browser client's id (see `browserClients`); overrides `client`. */
    clientId?: string;
    sub?: string;
  }): Promise<MintedTokens>;
  /**
   * Revokes one access token (refresh-grant or client_credentials) at the server, leaving its
   * grant and refresh token alive. Done in-process because oidc-provider's RFC 7009 endpoint
   * revokes the whole grant when given a grant-bound access token.
   * @returns whether the token existed.
   */
  revokeAccessToken(token: string): Promise<boolean>;
  /** Revokes a whole grant (every access and refresh token of it), by refresh token or grant id. */
  revokeGrant(refreshTokenOrGrantId: string): Promise<void>;
  /** RFC 7662 introspection over HTTP, authenticated as the basic client. */
  introspect(token: string): Promise<Record<string, unknown>>;
  /**
   * Makes oidc-provider require a DPoP nonce (RFC 9449 §8) in every token-request proof from now
   * on: a proof without one, or with a stale one, gets 400 `use_dpop_nonce` and a `DPoP-Nonce`.
   * DPoP itself is always on (a request with a `DPoP` header gets a DPoP-bound token);
   * requests without a proof are unaffected. Off at the start.
   */
  setDpopNonceRequired(required: boolean): void;
  /**
   * Plays an authorization server without DPoP support: from now on the `DPoP` header of token
   * requests is dropped before oidc-provider sees it, so it answers with Bearer tokens. Off at
   * the start.
   */
  setDpopIgnored(ignored: boolean): void;
  /**
   * What the server knows of an access token, looked up in-process: its client, subject, scope
   * and the DPoP key thumbprint it is bound to (`cnf.jkt`), or `undefined` when it is not
   * active.
   */
  findAccessToken(token: string): Promise<AccessTokenInfo | undefined>;
  /** Closes both servers and their open connections. */
  close(): Promise<void>;
}

/** An active access token as the server stored it, see {@link OidcServer.findAccessToken}. */
export interface AccessTokenInfo {
  readonly clientId: string | undefined;
  readonly sub: string | undefined;
  readonly scope: string | undefined;
  /** The RFC 7638 thumbprint of the DPoP key the token is bound to, if it is bound. */
  readonly jkt: string | undefined;
}

function basicAuth(clientId: string, clientSecret: string): string {
  const encode = (value: string) => encodeURIComponent(value).replace(/%20/g, '+');
  return `Basic ${Buffer.from(`${encode(clientId)}:${encode(clientSecret)}`).toString('base64')}`;
}

// The fixture's own calls use node:http, not the global fetch, so tests that patch or wrap
// fetch never see (or count) them.
function post(
  url: string,
  headers: Record<string, string>,
  form: URLSearchParams,
): Promise<{ status: number; json: Record<string, unknown> }> {
  const body = form.toString();
  return new Promise((resolve, reject) => {
    const req = request(
      url,
      {
        method: 'POST',
        headers: {
          ...headers,
          accept: 'application/json',
          'content-type': 'application/x-www-form-urlencoded',
          'content-length': String(Buffer.byteLength(body)),
        },
        agent: false,
      },
      (res) => {
        readBody(res).then((raw) => {
          try {
            resolve({
              status: res.statusCode ?? 0,
              json: JSON.parse(raw.toString('utf8')) as Record<string, unknown>,
            });
          } catch (error) {
            reject(error);
          }
        }, reject);
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

function readBody(req: IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => resolve(Buffer.concat(chunks)));
    req.on('error', reject);
  });
}

function record(req: IncomingMessage, body: Buffer): RecordedRequest {
  return {
    method: req.method ?? 'GET',
    url: req.url ?? '/',
    headers: { ...req.headers },
    body: body.toString('utf8'),
    at: Date.now(),
  };
}

/** Waits `ms`; resolves `true` as soon as the client's connection closes (the request is dropped). */
function holdAtDoor(res: ServerResponse, ms: number): Promise<boolean> {
  return new Promise((resolve) => {
    if (res.destroyed || res.socket?.destroyed) {
      resolve(true);
      return;
    }
    const gone = () => {
      clearTimeout(timer);
      resolve(true);
    };
    const timer = setTimeout(() => {
      res.off('close', gone);
      resolve(res.destroyed || res.socket?.destroyed === true);
    }, ms);
    res.once('close', gone);
  });
}

async function listen(server: Server): Promise<number> {
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      server.off('error', reject);
      resolve();
    });
  });
  return (server.address() as AddressInfo).port;
}

async function closeServer(server: Server): Promise<void> {
  if (!server.listening) return;
  await new Promise<void>((resolve) => {
    server.close(() => resolve());
    server.closeAllConnections();
  });
}

function clientIdOf(req: IncomingMessage, form: URLSearchParams): string | undefined {
  const auth = req.headers.authorization;
  if (auth?.toLowerCase().startsWith('basic ')) {
    const decoded = Buffer.from(auth.slice(6), 'base64').toString('utf8');
    const id = decoded.slice(0, Math.max(0, decoded.indexOf(':')));
    try {
      return decodeURIComponent(id.replace(/\+/g, '%20'));
    } catch {
      return id;
    }
  }
  return form.get('client_id') ?? undefined;
}

/**
 * Starts oidc-provider and a protected resource server on 127.0.0.1 (random ports).
 *
 * @example
 * ```ts
 * let op: OidcServer;
 * beforeAll(async () => { op = await startOidcServer(); });
 * afterAll(() => op.close());
 * ```
 */
export async function startOidcServer(options: OidcServerOptions = {}): Promise<OidcServer> {
  const ttl: TokenTtls = {
    accessToken: options.ttl?.accessToken ?? 300,
    clientCredentials: options.ttl?.clientCredentials ?? 300,
  };

  const requests: RecordedRequest[] = [];
  const tokenRequests: TokenRequestRecord[] = [];
  const resourceRequests: RecordedRequest[] = [];
  const resourceStatuses: number[] = [];

  // Both servers listen first so that the issuer and the resource indicator know their ports.
  let opHandler: ((req: IncomingMessage, res: ServerResponse) => void) | undefined;
  let rsHandler: ((req: IncomingMessage, res: ServerResponse) => Promise<void>) | undefined;
  const hold = { ms: 0, waiting: 0, dropped: 0 };
  const dpop = { nonceRequired: false, ignored: false };
  const opServer = createServer((req, res) => {
    void readBody(req).then(async (body) => {
      requests.push(record(req, body));
      // oidc-provider reads an already-consumed body from req.body (its "upstream parser"
      // fallback); the raw buffer keeps its form-urlencoded parsing byte-exact.
      (req as IncomingMessage & { body?: Buffer }).body = body;
      if (req.method === 'POST' && (req.url ?? '').split('?')[0] === '/token') {
        if (hold.ms > 0) {
          hold.waiting++;
          const gone = await holdAtDoor(res, hold.ms);
          hold.waiting--;
          if (gone) {
            hold.dropped++;
            return;
          }
        }
        trackTokenResponse(req, res, body);
        // A server without DPoP support ignores the header (requests[] keeps it as sent).
        if (dpop.ignored) delete req.headers.dpop;
      }
      opHandler?.(req, res);
    });
  });
  const rsServer = createServer((req, res) => {
    void rsHandler?.(req, res);
  });
  const opPort = await listen(opServer);
  const rsPort = await listen(rsServer);
  const issuer = `http://127.0.0.1:${opPort}`;
  const rsOrigin = `http://127.0.0.1:${rsPort}`;
  const resourceIndicator = `${rsOrigin}/`;

  function trackTokenResponse(req: IncomingMessage, res: ServerResponse, body: Buffer): void {
    const form = new URLSearchParams(body.toString('utf8'));
    const chunks: Buffer[] = [];
    const write = res.write.bind(res) as (...args: unknown[]) => boolean;
    const end = res.end.bind(res) as (...args: unknown[]) => ServerResponse;
    const keep = (chunk: unknown) => {
      if (typeof chunk === 'string') chunks.push(Buffer.from(chunk));
      else if (chunk instanceof Uint8Array) chunks.push(Buffer.from(chunk));
    };
    res.write = ((chunk: unknown, ...rest: unknown[]) => {
      keep(chunk);
      return write(chunk, ...rest);
    }) as ServerResponse['write'];
    res.end = ((chunk?: unknown, ...rest: unknown[]) => {
      if (typeof chunk !== 'function') keep(chunk);
      return end(chunk, ...rest);
    }) as ServerResponse['end'];
    res.on('finish', () => {
      let answer: Record<string, unknown> = {};
      try {
        const parsed: unknown = JSON.parse(Buffer.concat(chunks).toString('utf8'));
        if (parsed && typeof parsed === 'object') answer = parsed as Record<string, unknown>;
      } catch {
        // Not JSON: counted by status below.
      }
      const text = (value: unknown) => (typeof value === 'string' ? value : undefined);
      const ok = res.statusCode === 200;
      tokenRequests.push({
        grantType: form.get('grant_type') ?? undefined,
        status: res.statusCode,
        error: ok ? undefined : (text(answer['error']) ?? `http_${res.statusCode}`),
        clientId: clientIdOf(req, form),
        sentRefreshToken: form.get('refresh_token') ?? undefined,
        issuedAccessToken: ok ? text(answer['access_token']) : undefined,
        issuedRefreshToken: ok ? text(answer['refresh_token']) : undefined,
      });
    });
  }

  const [signing, clientKeys] = await Promise.all([
    generateKeyPair('RS256', { extractable: true }),
    generateKeyPair('ES256', { extractable: true }),
  ]);
  const signingJwk = { ...(await exportJWK(signing.privateKey)), kid: 'op-rs256', alg: 'RS256' };
  const clientPrivateJwk: JWK = {
    ...(await exportJWK(clientKeys.privateKey)),
    kid: 'client-es256',
    alg: 'ES256',
  };
  const clientPublicJwk: JWK = {
    ...(await exportJWK(clientKeys.publicKey)),
    kid: 'client-es256',
    alg: 'ES256',
    use: 'sig',
  };

  const noBrowser = { redirect_uris: [], response_types: [] };
  const browserClients = options.browserClients ?? [];
  const corsOrigins = new Set(browserClients.map((client) => client.origin));
  const refreshSecret = `refresh-secret-${randomUUID()}`;
  const dpopSecret = `dpop-secret-${randomUUID()}`;

  const provider = new Provider(issuer, {
    clients: [
      {
        ...noBrowser,
        client_id: 'basic-client',
        client_secret: BASIC_CLIENT_SECRET,
        grant_types: ['client_credentials'],
        token_endpoint_auth_method: 'client_secret_basic',
      },
      {
        ...noBrowser,
        client_id: 'post-client',
        client_secret: BASIC_CLIENT_SECRET,
        grant_types: ['client_credentials'],
        token_endpoint_auth_method: 'client_secret_post',
      },
      {
        ...noBrowser,
        client_id: 'jwt-client',
        grant_types: ['client_credentials'],
        token_endpoint_auth_method: 'private_key_jwt',
        token_endpoint_auth_signing_alg: 'ES256',
        jwks: { keys: [clientPublicJwk] },
      },
      {
        ...noBrowser,
        client_id: 'refresh-client',
        client_secret: refreshSecret,
        grant_types: ['refresh_token', MINT_REFRESH_GRANT],
        token_endpoint_auth_method: 'client_secret_basic',
      },
      {
        ...noBrowser,
        client_id: DPOP_CLIENT_ID,
        client_secret: dpopSecret,
        grant_types: ['client_credentials', 'refresh_token', MINT_REFRESH_GRANT],
        token_endpoint_auth_method: 'client_secret_basic',
        dpop_bound_access_tokens: true,
      },
      {
        ...noBrowser,
        client_id: 'public-client',
        grant_types: ['refresh_token', MINT_REFRESH_GRANT],
        token_endpoint_auth_method: 'none',
      },
      {
        ...noBrowser,
        client_id: DEVICE_CLIENT_ID,
        grant_types: ['urn:ietf:params:oauth:grant-type:device_code', 'refresh_token'],
        token_endpoint_auth_method: 'none',
      },
      ...browserClients.map((client) => ({
        client_id: client.clientId,
        grant_types: ['authorization_code', 'refresh_token', MINT_REFRESH_GRANT],
        response_types: ['code'],
        redirect_uris: [`${client.origin}/callback`],
        // Where RP-initiated logout (end_session_endpoint) may send the browser back to.
        post_logout_redirect_uris: [`${client.origin}/`],
        token_endpoint_auth_method: 'none',
      })),
    ],
    jwks: { keys: [signingJwk] },
    cookies: { keys: [randomUUID()] },
    findAccount: (_ctx: unknown, sub: string) => ({
      accountId: sub,
      claims: () => ({ sub }),
    }),
    features: {
      devInteractions: { enabled: options.devInteractions === true },
      deviceFlow: { enabled: true },
      dPoP: {
        enabled: true,
        nonceSecret: randomBytes(32),
        requireNonce: () => dpop.nonceRequired,
      },
      clientCredentials: { enabled: true },
      introspection: { enabled: true },
      revocation: { enabled: true },
      resourceIndicators: {
        enabled: true,
        // No resource parameter: no audience-restricted token (client_credentials then yields
        // an opaque token without `aud`; refresh grants keep their OIDC scopes).
        defaultResource: () => undefined,
        useGrantedResource: () => true,
        getResourceServerInfo: (_ctx: unknown, indicator: string) => {
          if (URL.parse(indicator)?.origin !== rsOrigin) {
            throw new errors.InvalidTarget('unknown resource indicator');
          }
          return {
            scope: RESOURCE_SCOPES.join(' '),
            audience: rsOrigin,
            accessTokenFormat: 'opaque',
            accessTokenTTL: ttl.clientCredentials,
          };
        },
      },
    },
    rotateRefreshToken: true,
    ttl: {
      AccessToken: () => ttl.accessToken,
      ClientCredentials: () => ttl.clientCredentials,
      RefreshToken: () => 24 * 60 * 60,
      Grant: () => 24 * 60 * 60,
      Session: () => 60 * 60,
      Interaction: () => 60 * 60,
      DeviceCode: () => 10 * 60,
      IdToken: () => 60 * 60,
    },
  });

  provider.registerGrantType(
    MINT_REFRESH_GRANT,
    async (ctx: ProviderContext) => {
      const client = ctx.oidc.client;
      if (!client) throw new errors.InvalidRequest('client required');
      const requested = ctx.oidc.params?.['sub'];
      const accountId = typeof requested === 'string' && requested ? requested : 'test-user';
      const scope = 'offline_access';
      const grant = new provider.Grant({ accountId, clientId: client.clientId });
      grant.addOIDCScope(scope);
      const grantId = await grant.save();
      const at = new provider.AccessToken({
        accountId,
        client,
        grantId,
        gty: MINT_REFRESH_GRANT,
        scope,
      });
      const accessToken = await at.save();
      const rt = new provider.RefreshToken({
        accountId,
        client,
        grantId,
        gty: MINT_REFRESH_GRANT,
        scope,
        rotations: 0,
      });
      const refreshToken = await rt.save();
      ctx.body = {
        access_token: accessToken,
        token_type: 'Bearer',
        expires_in: at.expiration,
        refresh_token: refreshToken,
        scope,
        grant_id: grantId,
      };
    },
    ['sub'],
  );

  opHandler = provider.callback();

  async function findAccessToken(token: string): Promise<ProviderToken | undefined> {
    return (
      (await provider.AccessToken.find(token)) ?? (await provider.ClientCredentials.find(token))
    );
  }

  let override: ResourceOverride | undefined;
  rsHandler = async (req, res) => {
    const body = await readBody(req);
    resourceRequests.push(record(req, body));
    const reply = (status: number, json: unknown, headers: Record<string, string> = {}) => {
      resourceStatuses.push(status);
      res.writeHead(status, { 'content-type': 'application/json', ...headers });
      res.end(JSON.stringify(json));
    };
    const path = new URL(req.url ?? '/', rsOrigin);
    const origin = req.headers.origin;
    if (origin !== undefined && corsOrigins.has(origin)) {
      // CORS for browser clients' pages; WWW-Authenticate exposed so that a 401's reason
      // (invalid_token) is readable by script, as a real API must do for SPAs.
      res.setHeader('access-control-allow-origin', origin);
      res.setHeader('access-control-expose-headers', 'WWW-Authenticate');
      res.setHeader('vary', 'Origin');
      if (req.method === 'OPTIONS' && req.headers['access-control-request-method']) {
        resourceStatuses.push(204);
        res.writeHead(204, {
          'access-control-allow-methods': 'GET, HEAD, POST, PUT, PATCH, DELETE',
          'access-control-allow-headers':
            req.headers['access-control-request-headers'] ?? 'authorization',
          'access-control-max-age': '600',
        });
        res.end();
        return;
      }
    }
    // A redirect anywhere, before any token check, to test what follows redirects.
    if (path.pathname === '/redirect') {
      resourceStatuses.push(307);
      res.writeHead(307, { location: path.searchParams.get('to') ?? '/' });
      res.end();
      return;
    }
    const match = /^Bearer ([^\s]+)$/i.exec(req.headers.authorization ?? '');
    if (!match) {
      reply(401, { error: 'unauthorized' }, { 'www-authenticate': 'Bearer realm="resource"' });
      return;
    }
    if (override) {
      const headers: Record<string, string> = {};
      if (override.wwwAuthenticate) headers['www-authenticate'] = override.wwwAuthenticate;
      reply(override.status, { error: 'override' }, headers);
      return;
    }
    const token = await findAccessToken(match[1] as string).catch(() => undefined);
    if (!token?.isValid) {
      reply(
        401,
        { error: 'invalid_token' },
        {
          'www-authenticate':
            'Bearer realm="resource", error="invalid_token", error_description="token is not active"',
        },
      );
      return;
    }
    reply(200, {
      ok: true,
      method: req.method,
      path: req.url,
      clientId: token.clientId,
      sub: token.accountId,
      scope: token.scope,
      kind: token.kind,
      body: body.length > 0 ? body.toString('utf8') : undefined,
    });
  };

  const tokenEndpoint = `${issuer}/token`;
  const introspectionEndpoint = `${issuer}/token/introspection`;
  const revocationEndpoint = `${issuer}/token/revocation`;
  const clients = {
    basic: { clientId: 'basic-client', clientSecret: BASIC_CLIENT_SECRET },
    jwt: {
      clientId: 'jwt-client',
      privateKey: clientKeys.privateKey,
      privateJwk: clientPrivateJwk,
      publicJwk: clientPublicJwk,
    },
    refresh: { clientId: 'refresh-client', clientSecret: refreshSecret },
    public: { clientId: 'public-client' },
    dpop: { clientId: DPOP_CLIENT_ID, clientSecret: dpopSecret },
  } as const;

  return {
    issuer,
    url: issuer,
    tokenEndpoint,
    revocationEndpoint,
    introspectionEndpoint,
    clients,
    requests,
    tokenRequests,
    resource: {
      origin: rsOrigin,
      resourceIndicator,
      requests: resourceRequests,
      statuses: resourceStatuses,
      setOverride(next) {
        override = next;
      },
    },
    tokenCounts(grantType) {
      const selected = tokenRequests.filter(
        (r) => grantType === undefined || r.grantType === grantType,
      );
      const errorCounts: Record<string, number> = {};
      for (const r of selected) {
        if (r.error !== undefined) errorCounts[r.error] = (errorCounts[r.error] ?? 0) + 1;
      }
      const ok = selected.filter((r) => r.status === 200).length;
      return { total: selected.length, ok, failed: selected.length - ok, errors: errorCounts };
    },
    resetRecords() {
      requests.length = 0;
      tokenRequests.length = 0;
      resourceRequests.length = 0;
      resourceStatuses.length = 0;
    },
    setTtl(next) {
      if (next.accessToken !== undefined) ttl.accessToken = next.accessToken;
      if (next.clientCredentials !== undefined) ttl.clientCredentials = next.clientCredentials;
    },
    holdTokenRequests(ms) {
      hold.ms = Math.max(0, ms);
    },
    heldTokenRequests() {
      return { waiting: hold.waiting, dropped: hold.dropped };
    },
    async mintRefreshToken({ client = 'refresh', clientId, sub } = {}) {
      const form = new URLSearchParams({ grant_type: MINT_REFRESH_GRANT });
      if (sub !== undefined) form.set('sub', sub);
      const headers: Record<string, string> = {};
      if (clientId !== undefined) {
        form.set('client_id', clientId);
      } else if (client === 'refresh' || client === 'dpop') {
        headers['authorization'] = basicAuth(
          clients[client].clientId,
          clients[client].clientSecret,
        );
      } else {
        form.set('client_id', clients.public.clientId);
      }
      const { status, json } = await post(tokenEndpoint, headers, form);
      if (status !== 200) throw new Error(`test grant failed: ${status} ${JSON.stringify(json)}`);
      return {
        refreshToken: json['refresh_token'] as string,
        accessToken: json['access_token'] as string,
        expiresIn: json['expires_in'] as number,
        grantId: json['grant_id'] as string,
      };
    },
    async revokeAccessToken(token) {
      const found = await findAccessToken(token);
      if (!found) return false;
      await found.destroy();
      return true;
    },
    async revokeGrant(refreshTokenOrGrantId) {
      const rt = await provider.RefreshToken.find(refreshTokenOrGrantId, {
        ignoreExpiration: true,
      });
      const grantId = rt?.grantId ?? refreshTokenOrGrantId;
      await Promise.all([
        provider.AccessToken.revokeByGrantId(grantId),
        provider.RefreshToken.revokeByGrantId(grantId),
      ]);
      const grant = await provider.Grant.find(grantId);
      await grant?.destroy();
    },
    async introspect(token) {
      const { json } = await post(
        introspectionEndpoint,
        { authorization: basicAuth(clients.basic.clientId, clients.basic.clientSecret) },
        new URLSearchParams({ token }),
      );
      return json;
    },
    setDpopNonceRequired(required) {
      dpop.nonceRequired = required;
    },
    setDpopIgnored(ignored) {
      dpop.ignored = ignored;
    },
    async findAccessToken(token) {
      const found = await findAccessToken(token).catch(() => undefined);
      if (!found?.isValid) return undefined;
      return {
        clientId: found.clientId,
        sub: found.accountId,
        scope: found.scope,
        jkt: (found as ProviderToken & { jkt?: string }).jkt,
      };
    },
    async close() {
      await Promise.all([closeServer(opServer), closeServer(rsServer)]);
    },
  };
}
