// What the IndexedDB store tells the other tabs of its origin: a BroadcastChannel per database,
// `tokenwarden:<name>`, on which every write announces { id, version, sealed } and every delete
// the warden asks for (a sign-out or revocation) announces { id, deleted: true, version? }.
//
// - Only sealed records travel, never a token: a tab opens an announced record with the key it
//   shares with the others (the non-extractable key in IndexedDB), and one that does not open is
//   dropped and reported like a tampered stored record.
// - A BroadcastChannel object never receives its own messages, but does receive those of other
//   objects of the same name in the same page, so two stores over one database in one page hear
//   each other as two tabs would.
// - Announcements from different tabs may arrive in any order. Each store object remembers the
//   highest version it has seen of each record (written by itself or announced) and drops older
//   announcements, so a late message never takes a tab back to a token set that was replaced, or
//   signs it out of one written after the sign-out it announces.
import { hasBroadcastChannel } from './support.js';

/** One announcement on the channel. */
export type Announcement =
  | { readonly id: string; readonly version: number; readonly sealed: string }
  | { readonly id: string; readonly deleted: true; readonly version?: number };

/** The listener shape of {@link RecordBackend.watch}: a sealed record and its version, or a delete. */
export type ChangeListener = (sealed: string | undefined, version?: number) => void;

/** The channel of one store object. */
export interface Announcer {
  /** Sends to every other store object of the database (other tabs, other stores of this page). */
  announce(message: Announcement): void;
  /** Subscribes to the announcements about one record. @returns The unsubscribe function. */
  watch(id: string, listener: ChangeListener): () => void;
  /**
   * Closes the channel once no listener is left (another warden may share the store object);
   * a later `announce` or `watch` opens it again.
   */
  close(): void;
}

/** The channel name of the database `name`. */
export function channelName(name: string): string {
  return `tokenwarden:${name}`;
}

/** Builds the announcer of the database `name`; a silent one where BroadcastChannel is missing. */
export function createAnnouncer(name: string): Announcer {
  const listeners = new Map<string, Set<ChangeListener>>();
  const latest = new Map<string, number>();
  let channel: BroadcastChannel | undefined;
  let closing = false;

  const shut = () => {
    channel?.close();
    channel = undefined;
  };

  /** Whether an announcement about `id` at `version` is newer than what this object has seen. */
  const fresh = (id: string, version: number | undefined, deleted: boolean): boolean => {
    const seen = latest.get(id);
    if (version === undefined) return true;
    if (seen !== undefined && (deleted ? version < seen : version <= seen)) return false;
    latest.set(id, Math.max(version, seen ?? version));
    return true;
  };

  const receive = (event: MessageEvent<unknown>) => {
    const message = parse(event.data);
    if (!message) return;
    const deleted = 'deleted' in message;
    if (!fresh(message.id, message.version, deleted)) return;
    for (const listener of listeners.get(message.id) ?? []) {
      try {
        if (deleted) listener(undefined);
        else listener(message.sealed, message.version);
      } catch {
        // One failing listener must not keep the others from hearing about the change.
      }
    }
  };

  const open = (): BroadcastChannel | undefined => {
    if (channel || !hasBroadcastChannel()) return channel;
    channel = new BroadcastChannel(channelName(name));
    channel.onmessage = receive;
    // Where a runtime counts open channels as pending work (Node, in tests and server-side
    // rendering), listening must not keep the process alive.
    (channel as { unref?: () => void }).unref?.();
    return channel;
  };

  return {
    announce(message) {
      // Own writes count as seen: an older announcement arriving later is dropped.
      if (message.version !== undefined) {
        latest.set(message.id, Math.max(message.version, latest.get(message.id) ?? 0));
      }
      try {
        open()?.postMessage(message);
      } catch {
        // A closed or failing channel costs the other tabs a re-read under the lock, not safety.
      }
    },
    watch(id, listener) {
      closing = false;
      open();
      let set = listeners.get(id);
      if (!set) {
        set = new Set();
        listeners.set(id, set);
      }
      set.add(listener);
      return () => {
        const current = listeners.get(id);
        current?.delete(listener);
        if (current?.size === 0) listeners.delete(id);
        if (closing && listeners.size === 0) shut();
      };
    },
    close() {
      closing = true;
      if (listeners.size === 0) shut();
    },
  };
}

/** The announcement in `data`, or `undefined` for anything else posted on the channel. */
function parse(data: unknown): Announcement | undefined {
  if (typeof data !== 'object' || data === null) return undefined;
  const { id, version, sealed, deleted } = data as Record<string, unknown>;
  if (typeof id !== 'string') return undefined;
  const validVersion = typeof version === 'number' && Number.isSafeInteger(version);
  if (deleted === true) {
    return validVersion ? { id, deleted: true, version: version as number } : { id, deleted: true };
  }
  if (typeof sealed === 'string' && validVersion) return { id, version: version as number, sealed };
  return undefined;
}
