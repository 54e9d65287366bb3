import type { RecordBackend } from '../../src/stores/types.js';

/** An in-memory RecordBackend whose raw contents tests can read and corrupt. */
export interface MapBackend extends RecordBackend {
  readonly records: Map<string, string>;
  writes: number;
  /** Makes the next read throw ERR_STORE_CORRUPT, as a backend with unparsable data does. */
  corruptNextRead: boolean;
}

export function mapBackend(): MapBackend {
  const backend: MapBackend = {
    kind: 'map',
    records: new Map(),
    writes: 0,
    corruptNextRead: false,
    async read(id) {
      if (backend.corruptNextRead) {
        backend.corruptNextRead = false;
        const { TokenWardenError } = await import('../../src/errors.js');
        throw new TokenWardenError('ERR_STORE_CORRUPT', 'unparsable');
      }
      return backend.records.get(id);
    },
    async write(id, sealed) {
      backend.writes++;
      backend.records.set(id, sealed);
    },
    async remove(id) {
      backend.records.delete(id);
    },
    async ids() {
      return [...backend.records.keys()];
    },
    async clear() {
      backend.records.clear();
    },
  };
  return backend;
}
