// The test page that test/integration/browser-dpop.test.ts loads in real Chromium, in one or
// more tabs of one profile: each registers the DPoP-bound credential `api` on indexedDbStore()
// with a custom source that hands out the tokens the test gave the page, and calls the test's
// resource server. Bundled by esbuild at test time from the library's source; exposes `window.tw`
// for page.evaluate(). Everything returned to the test is plain JSON, and never a token or a
// private key: the test finds tokens in what the page stored only by searching the raw dumps.
import { calculateJwkThumbprint, compactDecrypt } from 'jose';
import { indexedDbStore } from '../../src/browser/index.js';
import {
  type Credential,
  type CredentialStatus,
  createWarden,
  customSource,
  isTokenWardenError,
  type Warden,
} from '../../src/index.js';
import {
  type DumpedDatabase,
  done,
  dumpDatabases,
  type KeyFacts,
  keyFacts,
  openDatabase,
  serialise,
} from './idb-dump.js';

/** What the test passes to {@link DpopPageApi.setup}. */
export interface DpopSetup {
  /** The resource server's origin. */
  readonly resource: string;
  /** The IndexedDB database name (the keys live in `<name>-keys`). */
  readonly name: string;
  /** The DPoP algorithm, when not the default (ES256). */
  readonly algorithm?: 'ES256' | 'EdDSA';
}

/** A token the test minted for the page's source to hand out. */
export interface GivenToken {
  /** A non-secret label the test knows the token by. */
  readonly label: string;
  readonly token: string;
  readonly expiresIn: number;
}

/** One time the page's source was asked for a token. */
export interface Issue {
  /** The label of the token handed out, or `none` when the page had none left. */
  readonly label: string;
  /** The credential's DPoP thumbprint at that moment (its key exists before the token). */
  readonly thumbprint: string | undefined;
}

/** The outcome of one call through the credential. */
export interface CallResult {
  readonly status?: number;
  readonly body?: unknown;
  /** The error code when the call failed. */
  readonly error?: string;
}

/** One warden event as the page saw it (payloads are token-free by design). */
export interface DpopEvent {
  readonly event: string;
  readonly payload: unknown;
}

/** What the page finds out about the DPoP key pair stored in the key database. */
export interface DpopKeyReport {
  /** The keys of the key database's object store. */
  readonly entries: readonly string[];
  /** The stored `dpop:<id>` value, when there is one. */
  readonly stored?: {
    /** Whether the value is exactly `{ privateKey, publicKey }`, both CryptoKeys. */
    readonly isCryptoKeyPair: boolean;
    readonly members: readonly string[];
    readonly privateKey: KeyFacts;
    readonly publicKey: KeyFacts;
    /** The DOMException name `exportKey('jwk', privateKey)` rejected with, or `exported`. */
    readonly exportJwk: string;
    /** The same for `exportKey('pkcs8', privateKey)`. */
    readonly exportPkcs8: string;
    /** The RFC 7638 thumbprint of the stored public key. */
    readonly publicThumbprint: string;
    /** The members of the public key's JWK. */
    readonly publicMembers: readonly string[];
    /** Whether a signature of the stored private key verifies under the stored public key. */
    readonly signs: boolean;
  };
}

/** What the sealed record of the credential says about its DPoP key, once opened. */
export interface SealedDpopReport {
  /** The record's `dk` member: algorithm and thumbprint, or a private JWK (`j`). */
  readonly dk: unknown;
  /** Whether the plaintext contains a JWK `"d"` member anywhere. */
  readonly hasPrivateMember: boolean;
}

/** The page API. */
export interface DpopPageApi {
  setup(config: DpopSetup): Promise<void>;
  /** Queues tokens for the source to hand out, one per token request. */
  giveTokens(tokens: readonly GivenToken[]): void;
  /** Every token request of the source in this page, oldest first. */
  issued(): Issue[];
  call(path: string, method?: string): Promise<CallResult>;
  status(): CredentialStatus;
  forget(): Promise<void>;
  events(): DpopEvent[];
  keyReport(id: string): Promise<DpopKeyReport>;
  sealedReport(id: string): Promise<SealedDpopReport | undefined>;
  dump(): Promise<DumpedDatabase[]>;
  close(): Promise<void>;
}

/** The window of a DPoP page (not a global augmentation: other pages type `window.tw`). */
export interface DpopWindow {
  tw: DpopPageApi;
}

let warden: Warden | undefined;
let credential: Credential | undefined;
let resource = '';
let database = '';
const queue: GivenToken[] = [];
const issued: Issue[] = [];
const events: DpopEvent[] = [];

async function rawRead(name: string, storeName: string, key: IDBValidKey): Promise<unknown> {
  const db = await openDatabase(name);
  try {
    if (!db.objectStoreNames.contains(storeName)) return undefined;
    return await done(db.transaction(storeName).objectStore(storeName).get(key));
  } finally {
    db.close();
  }
}

async function rawKeys(name: string, storeName: string): Promise<IDBValidKey[]> {
  const db = await openDatabase(name);
  try {
    if (!db.objectStoreNames.contains(storeName)) return [];
    return await done(db.transaction(storeName).objectStore(storeName).getAllKeys());
  } finally {
    db.close();
  }
}

function requireCredential(): Credential {
  if (!credential) throw new Error('call setup() first');
  return credential;
}

const api: DpopPageApi = {
  async setup(config) {
    await api.close();
    resource = config.resource;
    database = config.name;
    warden = createWarden({ store: indexedDbStore({ name: config.name }) });
    for (const event of ['refresh', 'refresh-error', 'reauth-required', 'tamper'] as const) {
      warden.on(event, (payload: unknown) =>
        events.push({ event, payload: JSON.parse(JSON.stringify(payload)) }),
      );
    }
    credential = warden.register('api', {
      source: customSource(async () => {
        const next = queue.shift();
        issued.push({
          label: next?.label ?? 'none',
          thumbprint: credential?.status().dpop?.thumbprint,
        });
        if (!next) throw new Error('the test gave this page no token');
        return { accessToken: next.token, tokenType: 'DPoP', expiresIn: next.expiresIn };
      }),
      origins: [config.resource],
      dpop: config.algorithm === undefined ? true : { algorithm: config.algorithm },
    });
  },
  giveTokens(tokens) {
    queue.push(...tokens);
  },
  issued: () => issued,
  async call(path, method = 'GET') {
    try {
      const response = await requireCredential().fetch(new URL(path, resource), { method });
      const text = await response.text();
      let body: unknown = text;
      try {
        body = JSON.parse(text);
      } catch {
        // Not JSON: kept as text.
      }
      return { status: response.status, body };
    } catch (error) {
      return { error: isTokenWardenError(error) ? error.code : String(error) };
    }
  },
  status: () => JSON.parse(JSON.stringify(requireCredential().status())) as CredentialStatus,
  forget: () => requireCredential().forget(),
  events: () => events,
  async keyReport(id) {
    const keysDb = `${database}-keys`;
    const entries = (await rawKeys(keysDb, 'keys')).map(String).sort();
    const value = (await rawRead(keysDb, 'keys', `dpop:${id}`)) as
      | { privateKey?: unknown; publicKey?: unknown }
      | undefined;
    if (value === undefined) return { entries };
    const { privateKey, publicKey } = value;
    if (!(privateKey instanceof CryptoKey) || !(publicKey instanceof CryptoKey)) {
      throw new Error(`dpop:${id} is not a CryptoKeyPair: ${JSON.stringify(serialise(value))}`);
    }
    const attempt = (format: 'jwk' | 'pkcs8') =>
      crypto.subtle.exportKey(format, privateKey).then(
        () => 'exported',
        (error: unknown) => (error as DOMException).name,
      );
    const publicJwk = await crypto.subtle.exportKey('jwk', publicKey);
    const algorithm =
      privateKey.algorithm.name === 'ECDSA'
        ? { name: 'ECDSA', hash: 'SHA-256' }
        : { name: privateKey.algorithm.name };
    const data = new TextEncoder().encode('possession');
    const signature = await crypto.subtle.sign(algorithm, privateKey, data);
    return {
      entries,
      stored: {
        isCryptoKeyPair: true,
        members: Object.keys(value).sort(),
        privateKey: keyFacts(privateKey),
        publicKey: keyFacts(publicKey),
        exportJwk: await attempt('jwk'),
        exportPkcs8: await attempt('pkcs8'),
        publicThumbprint: await calculateJwkThumbprint(
          publicJwk as Parameters<typeof calculateJwkThumbprint>[0],
          'sha256',
        ),
        publicMembers: Object.keys(publicJwk).sort(),
        signs: await crypto.subtle.verify(algorithm, publicKey, signature, data),
      },
    };
  },
  async sealedReport(id) {
    const ring = (await rawRead(`${database}-keys`, 'keys', 'ring')) as
      | { keys: { kid: string; key: CryptoKey }[] }
      | undefined;
    const stored = (await rawRead(database, 'records', id)) as { s?: unknown } | undefined;
    const sealed = typeof stored?.s === 'string' ? stored.s : undefined;
    if (sealed === undefined) return undefined;
    for (const { key } of ring?.keys ?? []) {
      const opened = await compactDecrypt(sealed, key).catch(() => undefined);
      if (!opened) continue;
      const text = new TextDecoder().decode(opened.plaintext);
      const json = JSON.parse(text) as { dk?: unknown };
      return { dk: json.dk, hasPrivateMember: /"d"\s*:/.test(text) };
    }
    throw new Error(`no key of the ring opens the record of ${id}`);
  },
  dump: () => dumpDatabases(),
  async close() {
    await warden?.close();
    warden = undefined;
    credential = undefined;
    queue.length = 0;
    issued.length = 0;
    events.length = 0;
  },
};

(window as unknown as DpopWindow).tw = api;
