import type { JWK } from 'jose';
import type { DpopAlgorithm } from '../dpop/key.js';
import { TokenSet, type TokenSetInfo } from '../token.js';
import type { RecordMeta, StoredRecord } from './types.js';

/** The plaintext layout of a sealed record, version 1. Short keys keep records small. */
interface RecordJson {
  v: 1;
  at: string;
  tt: string;
  exp: number;
  iat: number;
  es: TokenSetInfo['expirySource'];
  rt?: string;
  sc?: string[];
  idt?: string;
  m: { c: number; r: number; u?: number; n: number; f: number };
  /**
   * The DPoP key: its algorithm and either its private JWK (`j`, an extractable key sealed with
   * the tokens) or the thumbprint (`t`) of a non-extractable pair the backend keeps as it is.
   */
  dk?: { a: DpopAlgorithm; j?: JWK; t?: string };
}

/** The DPoP key of a decoded record, still to be rebuilt (asynchronously) by the store. */
export interface StoredDpopKey {
  readonly algorithm: DpopAlgorithm;
  /** The private JWK of an extractable key. */
  readonly jwk?: JWK;
  /** The thumbprint of a key pair the backend keeps itself. */
  readonly thumbprint?: string;
}

/** A decoded record and, apart, its DPoP key material. */
export interface DecodedRecord {
  readonly record: StoredRecord;
  readonly dpop?: StoredDpopKey;
}

const EXPIRY_SOURCES = new Set(['expires_in', 'jwt', 'default', 'explicit']);

/** Serialises a record to the plaintext that the envelope encrypts. */
export function encodeRecord(record: StoredRecord): Uint8Array {
  const { tokens, meta } = record;
  const json: RecordJson = {
    v: 1,
    at: tokens.revealAccessToken(),
    tt: tokens.tokenType,
    exp: tokens.expiresAt,
    iat: tokens.issuedAt,
    es: tokens.expirySource,
    m: { c: meta.createdAt, r: meta.refreshedAt, n: meta.uses, f: meta.refreshes },
  };
  const refresh = tokens.revealRefreshToken();
  if (refresh !== undefined) json.rt = refresh;
  if (tokens.scope !== undefined) json.sc = [...tokens.scope];
  const idToken = tokens.revealIdToken();
  if (idToken !== undefined) json.idt = idToken;
  if (meta.lastUsedAt !== undefined) json.m.u = meta.lastUsedAt;
  const key = record.dpopKey;
  if (key) {
    const jwk = key.exportPrivateJwk();
    json.dk = jwk ? { a: key.algorithm, j: jwk } : { a: key.algorithm, t: key.thumbprint };
  }
  return new TextEncoder().encode(JSON.stringify(json));
}

/**
 * Parses a decrypted record. Returns `undefined` for anything that is not exactly a version-1
 * record: decryption proves who wrote it, and this proves it is still shaped as written.
 */
export function decodeRecord(plaintext: Uint8Array): StoredRecord | undefined {
  return decodeRecordParts(plaintext)?.record;
}

/** Like {@link decodeRecord}, with the DPoP key material the record carries. */
export function decodeRecordParts(plaintext: Uint8Array): DecodedRecord | undefined {
  let json: unknown;
  try {
    json = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(plaintext));
  } catch {
    return undefined;
  }
  if (!isObject(json) || json['v'] !== 1) return undefined;
  const { at, tt, exp, iat, es, rt, sc, idt, m, dk } = json;
  if (!isText(at) || !isText(tt) || !isTime(exp) || !isTime(iat)) return undefined;
  if (typeof es !== 'string' || !EXPIRY_SOURCES.has(es)) return undefined;
  if (rt !== undefined && !isText(rt)) return undefined;
  if (idt !== undefined && !isText(idt)) return undefined;
  if (sc !== undefined && !(Array.isArray(sc) && sc.every(isText))) return undefined;
  if (!isObject(m)) return undefined;
  const { c, r, u, n, f } = m;
  if (!isTime(c) || !isTime(r) || (u !== undefined && !isTime(u))) return undefined;
  if (!isCount(n) || !isCount(f)) return undefined;
  const tokens = new TokenSet({
    accessToken: at,
    tokenType: tt,
    expiresAt: exp,
    issuedAt: iat,
    expirySource: es as TokenSetInfo['expirySource'],
    refreshToken: rt,
    scope: sc as string[] | undefined,
    idToken: idt,
  });
  const meta: { -readonly [K in keyof RecordMeta]: RecordMeta[K] } = {
    createdAt: c,
    refreshedAt: r,
    uses: n,
    refreshes: f,
  };
  if (u !== undefined) meta.lastUsedAt = u;
  if (dk === undefined) return { record: { tokens, meta } };
  const dpop = decodeDpopKey(dk);
  return dpop ? { record: { tokens, meta }, dpop } : undefined;
}

function decodeDpopKey(value: unknown): StoredDpopKey | undefined {
  if (!isObject(value)) return undefined;
  const { a, j, t } = value;
  if (a !== 'ES256' && a !== 'EdDSA') return undefined;
  if (j !== undefined && t === undefined && isObject(j) && typeof j['d'] === 'string') {
    return { algorithm: a, jwk: j as JWK };
  }
  if (t !== undefined && j === undefined && isText(t)) return { algorithm: a, thumbprint: t };
  return undefined;
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function isText(value: unknown): value is string {
  return typeof value === 'string' && value.length > 0;
}

function isTime(value: unknown): value is number {
  return typeof value === 'number' && Number.isFinite(value) && value >= 0;
}

function isCount(value: unknown): value is number {
  return typeof value === 'number' && Number.isSafeInteger(value) && value >= 0;
}
