import { CompactEncrypt, compactDecrypt, decodeProtectedHeader } from 'jose';
import type { KeyProvider, SealingKey } from './keys.js';
import { decodeRecordParts, encodeRecord, type StoredDpopKey } from './record.js';
import type { StoredRecord } from './types.js';

/** The protected-header member that binds a record to its slot (the credential id). */
const SLOT = 'tw_slot';
/** Records larger than this are not even parsed: no real token set comes near it. */
const MAX_SEALED_LENGTH = 256 * 1024;

/** What opening a sealed record found. */
export type OpenResult =
  | {
      readonly status: 'ok';
      /** The record, without its DPoP key, which the store rebuilds from `dpop`. */
      readonly record: StoredRecord;
      readonly dpop?: StoredDpopKey;
    }
  /** Sealed under a key the provider does not know (lost or rotated out): treat as absent. */
  | { readonly status: 'unknown-key' }
  /** Not a record this slot's key sealed: flipped, truncated, swapped or malformed. */
  | { readonly status: 'tampered' };

/**
 * Seals a record for one slot: JWE compact serialisation, `dir` + `A256GCM`, a fresh random IV
 * per call (jose draws it), and the key id and slot in the integrity-protected header.
 *
 * @see https://www.rfc-editor.org/rfc/rfc7516#section-7.1
 */
export async function sealRecord(
  record: StoredRecord,
  slot: string,
  key: SealingKey,
): Promise<string> {
  return new CompactEncrypt(encodeRecord(record))
    .setProtectedHeader({ alg: 'dir', enc: 'A256GCM', kid: key.kid, [SLOT]: slot })
    .encrypt(key.key);
}

/**
 * Opens a sealed record for one slot. Never returns a record that this slot's key did not seal:
 * anything else is `tampered` or `unknown-key`. Throws only what the key provider's `find()`
 * throws (a key store that cannot be reached right now).
 */
export async function openRecord(
  sealed: string,
  slot: string,
  keys: KeyProvider,
): Promise<OpenResult> {
  if (typeof sealed !== 'string' || sealed.length > MAX_SEALED_LENGTH) return TAMPERED;
  // Base64url decoders ignore the spare low bits of a final character, so a flipped bit there
  // would decode to the same bytes. Only the canonical encoding is accepted: every stored bit
  // is covered.
  if (!sealed.split('.').every(isCanonicalBase64Url)) return TAMPERED;
  let header: ReturnType<typeof decodeProtectedHeader>;
  try {
    header = decodeProtectedHeader(sealed);
  } catch {
    return TAMPERED;
  }
  if (header.alg !== 'dir' || header.enc !== 'A256GCM' || typeof header.kid !== 'string') {
    return TAMPERED;
  }
  // The slot is checked before decryption for a clear verdict, and authenticated by it: the
  // protected header is the AES-GCM additional data, so it cannot be edited to match.
  if (header[SLOT] !== slot) return TAMPERED;
  // A provider that cannot answer right now throws, and that propagates: only a key the provider
  // positively does not know makes the record unknown (and deleted).
  const key: SealingKey | undefined = await keys.find(header.kid);
  if (!key) return UNKNOWN_KEY;
  try {
    const { plaintext, protectedHeader } = await compactDecrypt(sealed, key.key, {
      keyManagementAlgorithms: ['dir'],
      contentEncryptionAlgorithms: ['A256GCM'],
    });
    if (protectedHeader[SLOT] !== slot || protectedHeader.kid !== key.kid) return TAMPERED;
    const decoded = decodeRecordParts(plaintext);
    if (!decoded) return TAMPERED;
    return decoded.dpop
      ? { status: 'ok', record: decoded.record, dpop: decoded.dpop }
      : { status: 'ok', record: decoded.record };
  } catch {
    return TAMPERED;
  }
}

function isCanonicalBase64Url(segment: string): boolean {
  if (!/^[A-Za-z0-9_-]*$/.test(segment) || segment.length % 4 === 1) return false;
  const padded = segment.replace(/-/g, '+').replace(/_/g, '/');
  try {
    const canonical = btoa(atob(padded + '='.repeat((4 - (padded.length % 4)) % 4)))
      .replace(/\+/g, '-')
      .replace(/\//g, '_')
      .replace(/=+$/, '');
    return canonical === segment;
  } catch {
    return false;
  }
}

const TAMPERED: OpenResult = Object.freeze({ status: 'tampered' });
const UNKNOWN_KEY: OpenResult = Object.freeze({ status: 'unknown-key' });
