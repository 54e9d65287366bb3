// The test page that test/integration/browser-tabs.test.ts opens in several tabs of one real
// Chromium: each tab registers the same credential on the same IndexedDB store and calls the
// resource server in a loop, as the tabs of one single-page app would. Bundled by esbuild at
// test time from the library's source; exposes `window.tw` for page.evaluate(). Everything
// returned to the test is plain JSON, and never a token.
import { indexedDbStore } from '../../src/browser/index.js';
import {
  type Credential,
  type CredentialStatus,
  createWarden,
  isTokenWardenError,
  refreshToken,
  type Warden,
} from '../../src/index.js';

/** What the test passes to {@link TabsPageApi.setup}. */
export interface TabSetup {
  readonly issuer: string;
  readonly clientId: string;
  /** The refresh token the app was configured with (superseded by a stored one). */
  readonly refreshToken: string;
  /** The resource server's origin. */
  readonly resource: string;
  /** The IndexedDB database name. */
  readonly name: string;
  /** Delete `navigator.locks` before the store is created, as in browsers without Web Locks. */
  readonly withoutWebLocks: boolean;
}

/** One warden event as the tab saw it (payloads are token-free by design). */
export interface TabEvent {
  readonly event: string;
  readonly at: number;
  readonly payload: Record<string, unknown>;
}

/** What the call loop saw. */
export interface LoopReport {
  readonly calls: number;
  /** Answers by HTTP status. */
  readonly statuses: Record<string, number>;
  /** Failed calls by error code. */
  readonly errors: Record<string, number>;
}

/** The page API. */
export interface TabsPageApi {
  setup(config: TabSetup): Promise<void>;
  hasWebLocks(): boolean;
  /** Starts calling GET /me every `intervalMs`, one call at a time. */
  startLoop(intervalMs: number): void;
  /** Stops the loop, waits for the call in flight, and reports. */
  stopLoop(): Promise<LoopReport>;
  events(): TabEvent[];
  status(): CredentialStatus;
  forget(): Promise<void>;
  /** Whether the database holds a record for `id`, read straight from IndexedDB. */
  recordStored(id: string): Promise<boolean>;
  /** The names of the origin's IndexedDB databases. */
  databases(): Promise<string[]>;
  close(): Promise<void>;
}

/**
 * The window of a tabs page. (Not a global augmentation: page.ts gives `window.tw` another type,
 * and both pages are type-checked together.)
 */
export interface TabWindow {
  tw: TabsPageApi;
}

let warden: Warden | undefined;
let credential: Credential | undefined;
let database = '';
let resource = '';
const events: TabEvent[] = [];
let loop: { stop: boolean; done: Promise<void>; report: LoopReport } | undefined;

const count = (counts: Record<string, number>, key: string) => {
  counts[key] = (counts[key] ?? 0) + 1;
};

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

const api: TabsPageApi = {
  async setup(config) {
    await api.close();
    if (config.withoutWebLocks) {
      // `locks` is an accessor of Navigator.prototype; without it `navigator.locks` is undefined,
      // as in Safari before 15.4.
      delete (Navigator.prototype as { locks?: unknown }).locks;
    }
    database = config.name;
    resource = config.resource;
    events.length = 0;
    warden = createWarden({ store: indexedDbStore({ name: config.name }) });
    for (const event of ['refresh', 'refresh-error', 'reauth-required', 'tamper'] as const) {
      warden.on(event, (payload: unknown) =>
        events.push({ event, at: Date.now(), payload: JSON.parse(JSON.stringify(payload)) }),
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
  hasWebLocks: () => typeof navigator.locks?.request === 'function',
  startLoop(intervalMs) {
    const current = credential;
    if (!current) throw new Error('call setup() first');
    const report = { calls: 0, statuses: {}, errors: {} } satisfies LoopReport;
    const state = { stop: false, done: Promise.resolve(), report };
    state.done = (async () => {
      while (!state.stop) {
        report.calls += 1;
        try {
          const response = await current.fetch(new URL('/me', resource));
          await response.arrayBuffer();
          count(report.statuses, String(response.status));
        } catch (error) {
          count(report.errors, isTokenWardenError(error) ? error.code : String(error));
        }
        await sleep(intervalMs);
      }
    })();
    loop = state;
  },
  async stopLoop() {
    const current = loop;
    if (!current) throw new Error('no loop running');
    current.stop = true;
    await current.done;
    loop = undefined;
    return current.report;
  },
  events: () => events,
  status() {
    if (!credential) throw new Error('call setup() first');
    return JSON.parse(JSON.stringify(credential.status())) as CredentialStatus;
  },
  async forget() {
    if (!credential) throw new Error('call setup() first');
    await credential.forget();
  },
  async recordStored(id) {
    const db = await new Promise<IDBDatabase>((resolve, reject) => {
      const request = indexedDB.open(database);
      request.onsuccess = () => resolve(request.result);
      request.onerror = () => reject(request.error);
    });
    try {
      if (!db.objectStoreNames.contains('records')) return false;
      const request = db.transaction('records').objectStore('records').getKey(id);
      return await new Promise<boolean>((resolve, reject) => {
        request.onsuccess = () => resolve(request.result !== undefined);
        request.onerror = () => reject(request.error);
      });
    } finally {
      db.close();
    }
  },
  async databases() {
    return (await indexedDB.databases()).map((info) => info.name ?? '').sort();
  },
  async close() {
    if (loop) await api.stopLoop();
    await warden?.close();
    warden = undefined;
    credential = undefined;
  },
};

(window as unknown as TabWindow).tw = api;
