// The test page that test/integration/browser-store.test.ts loads in real Chromium. Bundled by
// esbuild at test time from the library's source; exposes `window.tw` for page.evaluate().
// Everything returned to the test is plain JSON, and never a token: the test finds tokens in
// what the page stored only by searching the raw dumps.
import { compactDecrypt } from 'jose';
import { indexedDbStore } from '../../src/browser/index.js';
import {
  type Credential,
  createWarden,
  type LogRecord,
  refreshToken,
  type SealedStore,
  type Warden,
} from '../../src/index.js';
import { type DumpedDatabase, done, dumpDatabases } from './idb-dump.js';

/** What the test passes to {@link PageApi.setup}. */
export interface PageSetup {
  readonly issuer: string;
  readonly clientId: string;
  /** The refresh token the app was configured with (superseded by a stored one). */
  readonly refreshToken: string;
  /** The resource server's origin. */
  readonly resource: string;
}

/** One warden event as the page saw it (payloads are token-free by design). */
export interface PageEvent {
  readonly event: string;
  readonly payload: unknown;
}

/** What the page finds out about the keys in the key database. */
export interface KeyReport {
  readonly current: string | undefined;
  readonly keys: readonly {
    readonly kid: string;
    readonly extractable: boolean;
    readonly algorithm: unknown;
    readonly usages: readonly string[];
    /** The DOMException name `exportKey('raw')` rejected with, or `exported` if it did not. */
    readonly exportRaw: string;
    /** The same for `exportKey('jwk')`. */
    readonly exportJwk: string;
    /** Whether this key opens the stored record of credential `api`. */
    readonly opensRecord: boolean;
  }[];
}

/** The page API. */
export interface PageApi {
  setup(config: PageSetup): Promise<void>;
  call(path: string): Promise<{ status: number }>;
  forceRefresh(): Promise<void>;
  storeHas(id: string): Promise<boolean>;
  events(): PageEvent[];
  logs(): LogRecord[];
  dump(): Promise<{ names: string[]; databases: DumpedDatabase[] }>;
  keyReport(): Promise<KeyReport>;
  flipRecord(id: string): Promise<void>;
  closeConnections(): number;
  upgrade(database: string): Promise<number>;
  close(): Promise<void>;
}

declare global {
  interface Window {
    tw: PageApi;
  }
}

const RECORDS_DB = 'tokenwarden';
const KEYS_DB = 'tokenwarden-keys';

// Every connection the library runs a transaction on, so the test can close them the way a
// browser does, without telling the store. The page's own raw connections are left out.
const libraryConnections = new Set<IDBDatabase>();
const rawConnections = new WeakSet<IDBDatabase>();
const transaction = IDBDatabase.prototype.transaction;
IDBDatabase.prototype.transaction = function (
  this: IDBDatabase,
  ...args: Parameters<IDBDatabase['transaction']>
) {
  if (!rawConnections.has(this)) libraryConnections.add(this);
  return transaction.apply(this, args);
} as IDBDatabase['transaction'];

let warden: Warden | undefined;
let store: SealedStore | undefined;
let credential: Credential | undefined;
let resource = '';
const events: PageEvent[] = [];
const logs: LogRecord[] = [];

function rawOpen(name: string, version?: number): Promise<IDBDatabase> {
  return new Promise((resolve, reject) => {
    const request = version === undefined ? indexedDB.open(name) : indexedDB.open(name, version);
    request.onsuccess = () => {
      rawConnections.add(request.result);
      resolve(request.result);
    };
    request.onerror = () => reject(request.error);
    request.onblocked = () =>
      reject(new Error(`opening ${name} at version ${version} was blocked`));
  });
}

/** The sealed string of a stored record: `{ v: version, s: sealed }` (or a plain string, as older versions of the store wrote). */
function sealedOf(value: unknown): string | undefined {
  if (typeof value === 'string') return value;
  const sealed = (value as { s?: unknown } | undefined)?.s;
  return typeof sealed === 'string' ? sealed : undefined;
}

async function rawRead(database: string, storeName: string, key: string): Promise<unknown> {
  const db = await rawOpen(database);
  try {
    return await done(db.transaction(storeName).objectStore(storeName).get(key));
  } finally {
    db.close();
  }
}

const api: PageApi = {
  async setup(config) {
    await warden?.close();
    resource = config.resource;
    store = indexedDbStore();
    warden = createWarden({ store, logger: (line) => logs.push(line) });
    for (const event of ['refresh', 'refresh-error', 'reauth-required', 'tamper'] as const) {
      warden.on(event, (payload: unknown) =>
        events.push({ event, payload: JSON.parse(JSON.stringify(payload)) }),
      );
    }
    credential = warden.register('api', {
      source: refreshToken({
        issuer: config.issuer,
        clientId: config.clientId,
        refreshToken: config.refreshToken,
      }),
      origins: [config.resource],
    });
  },
  async call(path) {
    if (!credential) throw new Error('call setup() first');
    const response = await credential.fetch(new URL(path, resource));
    await response.arrayBuffer();
    return { status: response.status };
  },
  async forceRefresh() {
    if (!credential) throw new Error('call setup() first');
    await credential.getToken({ forceRefresh: true });
  },
  async storeHas(id) {
    if (!store) throw new Error('call setup() first');
    return (await store.get(id)) !== undefined;
  },
  events: () => events,
  logs: () => logs,
  async dump() {
    // Through rawOpen, so the dump's own connections are not taken for the library's.
    const databases = await dumpDatabases((name) => rawOpen(name));
    return { names: databases.map((db) => db.name), databases };
  },
  async keyReport() {
    const ring = (await rawRead(KEYS_DB, 'keys', 'ring')) as
      | { current: string; keys: { kid: string; key: CryptoKey }[] }
      | undefined;
    const record = sealedOf(await rawRead(RECORDS_DB, 'records', 'api'));
    const keys = [];
    for (const { kid, key } of ring?.keys ?? []) {
      const attempt = (format: 'raw' | 'jwk') =>
        crypto.subtle.exportKey(format, key).then(
          () => 'exported',
          (error: unknown) => (error as DOMException).name,
        );
      const opensRecord =
        typeof record === 'string' &&
        (await compactDecrypt(record, key).then(
          ({ plaintext }) => plaintext.length > 0,
          () => false,
        ));
      keys.push({
        kid,
        extractable: key.extractable,
        algorithm: key.algorithm,
        usages: [...key.usages],
        exportRaw: await attempt('raw'),
        exportJwk: await attempt('jwk'),
        opensRecord,
      });
    }
    return { current: ring?.current, keys };
  },
  async flipRecord(id) {
    const db = await rawOpen(RECORDS_DB);
    try {
      const stored = await done(db.transaction('records').objectStore('records').get(id));
      const sealed = sealedOf(stored);
      if (sealed === undefined) throw new Error(`no record for ${id}`);
      const parts = sealed.split('.');
      const ciphertext = parts[3] ?? '';
      // A character in the middle carries six full bits (an edge one may only carry padding).
      const middle = Math.floor(ciphertext.length / 2);
      const swapped = ciphertext[middle] === 'A' ? 'B' : 'A';
      parts[3] = ciphertext.slice(0, middle) + swapped + ciphertext.slice(middle + 1);
      await done(
        db
          .transaction('records', 'readwrite')
          .objectStore('records')
          .put({ ...(stored as object), s: parts.join('.') }, id),
      );
    } finally {
      db.close();
    }
  },
  closeConnections() {
    for (const db of libraryConnections) db.close();
    const closed = libraryConnections.size;
    libraryConnections.clear();
    return closed;
  },
  async upgrade(database) {
    const probe = await rawOpen(database);
    const next = probe.version + 1;
    probe.close();
    // Rejects as blocked unless every other connection gives way on `versionchange`.
    const upgraded = await rawOpen(database, next);
    upgraded.close();
    return next;
  },
  async close() {
    await warden?.close();
    warden = undefined;
    credential = undefined;
    store = undefined;
  },
};

window.tw = api;
