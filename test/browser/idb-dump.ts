// Reads every IndexedDB database of the page's origin as raw as script can, for the browser test
// pages (page.ts, dpop-page.ts): the tests search these dumps for tokens and private key members,
// so the rendering keeps everything a leak could hide in. esbuild bundles this module into each
// page that imports it.

/** A CryptoKey's facts (the key itself never leaves the page). */
export interface KeyFacts {
  readonly type: string;
  readonly extractable: boolean;
  readonly algorithm: unknown;
  readonly usages: readonly string[];
}

/** Every object store of one database, as raw as script can read it. */
export interface DumpedDatabase {
  readonly name: string;
  readonly version: number;
  readonly stores: readonly {
    readonly name: string;
    readonly entries: readonly { readonly key: unknown; readonly value: unknown }[];
  }[];
}

/** Resolves with the request's result, rejects with its error. */
export function done<T>(request: IDBRequest<T>): Promise<T> {
  return new Promise((resolve, reject) => {
    request.onsuccess = () => resolve(request.result);
    request.onerror = () => reject(request.error);
  });
}

/** Opens the current version of database `name`. */
export function openDatabase(name: string): Promise<IDBDatabase> {
  return new Promise((resolve, reject) => {
    const request = indexedDB.open(name);
    request.onsuccess = () => resolve(request.result);
    request.onerror = () => reject(request.error);
  });
}

export function keyFacts(key: CryptoKey): KeyFacts {
  return {
    type: key.type,
    extractable: key.extractable,
    algorithm: JSON.parse(JSON.stringify(key.algorithm)),
    usages: [...key.usages],
  };
}

/** Renders a stored value as JSON, keeping everything a leak could hide in. */
export function serialise(value: unknown, depth = 0): unknown {
  if (depth > 8) return '[too deep]';
  if (value instanceof CryptoKey) return { CryptoKey: keyFacts(value) };
  if (value instanceof ArrayBuffer || ArrayBuffer.isView(value)) {
    const bytes =
      value instanceof ArrayBuffer
        ? new Uint8Array(value)
        : new Uint8Array(value.buffer, value.byteOffset, value.byteLength);
    // Latin-1 keeps every byte, so a token stored as bytes still reads as the token.
    return { bytes: String.fromCharCode(...bytes) };
  }
  if (value instanceof Date) return { Date: value.toISOString() };
  if (Array.isArray(value)) return value.map((item) => serialise(item, depth + 1));
  if (typeof value === 'object' && value !== null) {
    return Object.fromEntries(
      Object.entries(value).map(([key, item]) => [key, serialise(item, depth + 1)]),
    );
  }
  return value;
}

/**
 * Every entry of every object store of every database of the origin, databases sorted by name.
 * `open` opens a database by name (a page that tracks its own connections passes its opener).
 */
export async function dumpDatabases(
  open: (name: string) => Promise<IDBDatabase> = openDatabase,
): Promise<DumpedDatabase[]> {
  const names = (await indexedDB.databases()).map((info) => info.name ?? '').sort();
  const databases: DumpedDatabase[] = [];
  for (const name of names) {
    const db = await open(name);
    try {
      const stores = [];
      for (const storeName of [...db.objectStoreNames]) {
        const objects = db.transaction(storeName).objectStore(storeName);
        const [keys, values] = await Promise.all([
          done(objects.getAllKeys()),
          done(objects.getAll()),
        ]);
        stores.push({
          name: storeName,
          entries: keys.map((key, i) => ({ key: serialise(key), value: serialise(values[i]) })),
        });
      }
      databases.push({ name, version: db.version, stores });
    } finally {
      db.close();
    }
  }
  return databases;
}
