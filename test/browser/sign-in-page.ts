// The test page of test/integration/browser-sign-in.test.ts: a single-page app that signs its
// user in with authorizationCode() against the real oidc-provider fixture and keeps the tokens
// in indexedDbStore. Served at `/` and at `/callback` (the redirect URI); every page load is a
// fresh JavaScript context, so the test calls setup() after each navigation. Exposes `window.tw`
// for page.evaluate(); everything it returns is plain JSON and never a token.
import { indexedDbStore } from '../../src/browser/index.js';
import {
  type AuthorizationCodeSource,
  authorizationCode,
  type Credential,
  type CredentialStatus,
  createWarden,
  isTokenWardenError,
  type LoginOptions,
  type Warden,
} from '../../src/index.js';

/** What the test passes to {@link SignInPageApi.setup}. */
export interface SignInSetup {
  readonly issuer: string;
  readonly clientId: string;
  /** The resource server's origin. */
  readonly resource: string;
  /** The IndexedDB database name. */
  readonly name: string;
}

/** One warden event as the page saw it (payloads are token-free by design). */
export interface SignInEvent {
  readonly event: string;
  readonly payload: Record<string, unknown>;
}

/** A failure, as the page reports it. */
export interface PageError {
  readonly name: string;
  readonly code: string | undefined;
  readonly message: string;
  readonly json: unknown;
}

/** The outcome of an action: its JSON result or its error. */
export type Outcome<T> =
  | { readonly ok: true; readonly value: T }
  | { readonly ok: false; readonly error: PageError };

/** The page API. */
export interface SignInPageApi {
  setup(config: SignInSetup): void;
  /** Starts a sign-in; the browser leaves for the authorization server. */
  login(options: LoginOptions): Promise<Outcome<null>>;
  isRedirect(): boolean;
  /** Completes the sign-in from `url` (this page's URL by default). */
  handleRedirect(url?: string): Promise<Outcome<{ claims: unknown; appState: unknown }>>;
  /** GET on the resource server through the credential. */
  call(path: string): Promise<Outcome<{ status: number; body: unknown }>>;
  status(): CredentialStatus;
  events(): SignInEvent[];
  /** Signs out; with `endSession` the browser leaves for the end-session endpoint. */
  logout(endSession: boolean): Promise<Outcome<unknown>>;
  /** The raw sessionStorage, as JSON. */
  sessionStorage(): Record<string, string>;
  /** Replaces the nonce of every pending sign-in (as if another sign-in's ID token came back). */
  swapNonce(nonce: string): void;
  /** Every value of every IndexedDB database of the origin, serialised. */
  dumpIndexedDb(): Promise<string[]>;
  close(): Promise<void>;
}

/** The window of a sign-in page. (Not a global augmentation: page.ts types `window.tw` too.) */
export interface SignInWindow {
  tw: SignInPageApi;
}

let warden: Warden | undefined;
let credential: Credential | undefined;
let source: AuthorizationCodeSource | undefined;
let resource = '';
const events: SignInEvent[] = [];

function describe(error: unknown): PageError {
  const json = isTokenWardenError(error) ? error.toJSON() : undefined;
  return {
    name: error instanceof Error ? error.name : typeof error,
    code: isTokenWardenError(error) ? error.code : undefined,
    message: error instanceof Error ? error.message : String(error),
    json,
  };
}

async function outcome<T>(action: () => Promise<T>): Promise<Outcome<T>> {
  try {
    return { ok: true, value: await action() };
  } catch (error) {
    return { ok: false, error: describe(error) };
  }
}

function ready(): { source: AuthorizationCodeSource; credential: Credential } {
  if (!source || !credential) throw new Error('call setup() first');
  return { source, credential };
}

function serialise(value: unknown): string {
  if (typeof value === 'string') return value;
  try {
    return JSON.stringify(value, (_key, item: unknown) =>
      item instanceof ArrayBuffer || ArrayBuffer.isView(item)
        ? Array.from(new Uint8Array(item instanceof ArrayBuffer ? item : item.buffer))
        : item,
    );
  } catch {
    return String(value);
  }
}

function done<T>(request: IDBRequest<T>): Promise<T> {
  return new Promise((resolve, reject) => {
    request.onsuccess = () => resolve(request.result);
    request.onerror = () => reject(request.error);
  });
}

const api: SignInPageApi = {
  setup(config) {
    resource = config.resource;
    events.length = 0;
    source = authorizationCode({
      issuer: config.issuer,
      clientId: config.clientId,
      redirectUri: `${location.origin}/callback`,
      scope: 'openid offline_access',
      postLogoutRedirectUri: `${location.origin}/`,
    });
    warden = createWarden({ store: indexedDbStore({ name: config.name }) });
    for (const event of [
      'refresh',
      'refresh-error',
      'reauth-required',
      'revoke',
      'tamper',
    ] as const) {
      warden.on(event, (payload: unknown) =>
        events.push({ event, payload: JSON.parse(JSON.stringify(payload)) }),
      );
    }
    credential = warden.register('me', { source, origins: [config.resource] });
  },
  login: (options) =>
    outcome(async () => {
      await ready().source.login(options);
      return null;
    }),
  isRedirect: () => ready().source.isRedirect(),
  handleRedirect: (url) =>
    outcome(async () => {
      const result = await ready().source.handleRedirect(url ?? location.href);
      return { claims: result.claims ?? null, appState: result.appState ?? null };
    }),
  call: (path) =>
    outcome(async () => {
      const response = await ready().credential.fetch(new URL(path, resource));
      return { status: response.status, body: await response.json() };
    }),
  status: () => JSON.parse(JSON.stringify(ready().credential.status())) as CredentialStatus,
  events: () => events,
  logout: (endSession) =>
    outcome(async () => {
      const { source: signIn, credential: me } = ready();
      return JSON.parse(JSON.stringify(await signIn.logout(me, { endSession })));
    }),
  sessionStorage() {
    const all: Record<string, string> = {};
    for (let i = 0; i < sessionStorage.length; i++) {
      const key = sessionStorage.key(i) as string;
      all[key] = sessionStorage.getItem(key) ?? '';
    }
    return all;
  },
  swapNonce(nonce) {
    for (let i = 0; i < sessionStorage.length; i++) {
      const key = sessionStorage.key(i) as string;
      const pending = JSON.parse(sessionStorage.getItem(key) ?? '{}') as Record<
        string,
        { n?: string }
      >;
      for (const transaction of Object.values(pending)) transaction.n = nonce;
      sessionStorage.setItem(key, JSON.stringify(pending));
    }
  },
  async dumpIndexedDb() {
    const values: string[] = [];
    for (const { name } of await indexedDB.databases()) {
      if (!name) continue;
      const db = await done(indexedDB.open(name));
      try {
        for (const storeName of [...db.objectStoreNames]) {
          const objects = db.transaction(storeName).objectStore(storeName);
          const [keys, items] = await Promise.all([
            done(objects.getAllKeys()),
            done(objects.getAll()),
          ]);
          for (const [i, key] of keys.entries()) {
            values.push(`${name}/${storeName}/${serialise(key)}: ${serialise(items[i])}`);
          }
        }
      } finally {
        db.close();
      }
    }
    return values;
  },
  async close() {
    await warden?.close();
    warden = undefined;
    credential = undefined;
    source = undefined;
  },
};

(window as unknown as SignInWindow).tw = api;
