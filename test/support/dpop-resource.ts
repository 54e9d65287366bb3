// A protected resource server that accepts DPoP-bound access tokens only (RFC 9449 §7), on
// 127.0.0.1 with a random port, for integration tests. It checks what a careful production API
// checks, with jose: the proof's signature under its embedded public key, `typ`, `alg`, `htm`,
// `htu`, `ath`, the `iat` window, `jti` replay, its own nonce when required, and that the
// token, looked up at the authorization server (RFC 7662 introspection), is active and bound
// to the proof's key (`cnf.jkt`). Every request and its verdict are recorded.
import { createHash, randomBytes } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { calculateJwkThumbprint, EmbeddedJWK, type JWTPayload, jwtVerify } from 'jose';
import { listenOnLoopback } from './loopback.js';

/** The DPoP proof algorithms the server accepts. */
export const DPOP_ALGORITHMS = ['ES256', 'EdDSA'] as const;

/** Why a request was answered the way it was. */
export type DpopReason =
  | 'ok'
  | 'no-token'
  | 'not-dpop-scheme'
  | 'no-proof'
  | 'several-proofs'
  | 'bad-proof'
  | 'htm-mismatch'
  | 'htu-mismatch'
  | 'iat-out-of-window'
  | 'ath-mismatch'
  | 'jti-replay'
  | 'use-dpop-nonce'
  | 'inactive-token'
  | 'not-bound'
  | 'jkt-mismatch';

/** The claims of a proof whose signature verified. */
export interface ProofClaims {
  readonly jti: unknown;
  readonly htm: unknown;
  readonly htu: unknown;
  readonly iat: unknown;
  readonly ath: unknown;
  readonly nonce: unknown;
}

/** One request the server received and its verdict. */
export interface DpopVerdict {
  readonly method: string;
  /** Path and query as sent. */
  readonly url: string;
  readonly status: number;
  readonly reason: DpopReason;
  /** The `Authorization` scheme, lower-case, if any. */
  readonly scheme: string | undefined;
  /** The access token presented. Test data: a secret. */
  readonly token: string | undefined;
  /** The `DPoP` header as sent. Test data: a proof. */
  readonly proof: string | undefined;
  /** The proof's claims, when its signature verified. */
  readonly claims: ProofClaims | undefined;
  /** The RFC 7638 thumbprint of the proof's key, when its signature verified. */
  readonly proofJkt: string | undefined;
  /** The thumbprint the token is bound to (`cnf.jkt`), when it was looked up. */
  readonly tokenJkt: string | undefined;
  /** Every request header as received. */
  readonly headers: Readonly<Record<string, string | string[] | undefined>>;
  readonly at: number;
}

/** Options for {@link startDpopResource}. */
export interface DpopResourceOptions {
  /** RFC 7662 introspection at the authorization server. */
  readonly introspect: (token: string) => Promise<Record<string, unknown>>;
  /** How far a proof's `iat` may be from the server's clock, seconds. @default 60 */
  readonly iatWindow?: number;
}

/** The running resource server. */
export interface DpopResourceServer {
  /** `http://127.0.0.1:<port>` */
  readonly origin: string;
  /** Every request received, oldest first. */
  readonly requests: DpopVerdict[];
  /**
   * Requires the server's nonce in every proof from now on: a proof without it (or with an old
   * one) gets 401 `WWW-Authenticate: DPoP error="use_dpop_nonce"` and a `DPoP-Nonce` header.
   */
  setNonceRequired(required: boolean): void;
  /** Issues a new nonce: proofs carrying the previous one are challenged from now on. */
  rotateNonce(): string;
  /** The current nonce. */
  readonly nonce: string;
  /**
   * Holds the next `count` requests until all of them have arrived, then answers them: requests
   * sent concurrently are then all judged before any answer reaches the client.
   */
  gather(count: number): void;
  /** Closes the server and its connections. */
  close(): Promise<void>;
}

const ALGS = `algs="${DPOP_ALGORITHMS.join(' ')}"`;

function sha256(text: string): string {
  return createHash('sha256').update(text, 'ascii').digest('base64url');
}

function newNonce(): string {
  return randomBytes(16).toString('base64url');
}

/**
 * Starts the resource server. Every path needs a DPoP-bound token; `/redirect?to=<url>` then
 * answers 307 to `<url>`, any other path 200 with what the server saw.
 */
export async function startDpopResource(options: DpopResourceOptions): Promise<DpopResourceServer> {
  const window = options.iatWindow ?? 60;
  const requests: DpopVerdict[] = [];
  const seenJti = new Set<string>();
  let nonceRequired = false;
  let nonce = newNonce();
  let origin = '';
  let gathering:
    | { count: number; arrived: number; release: Promise<void>; open: () => void }
    | undefined;

  const handle = async (req: IncomingMessage, res: ServerResponse, body: Buffer) => {
    const method = req.method ?? 'GET';
    const url = req.url ?? '/';
    const verdict: {
      -readonly [K in keyof DpopVerdict]: DpopVerdict[K];
    } = {
      method,
      url,
      status: 0,
      reason: 'ok',
      scheme: undefined,
      token: undefined,
      proof: undefined,
      claims: undefined,
      proofJkt: undefined,
      tokenJkt: undefined,
      headers: { ...req.headers },
      at: Date.now(),
    };
    requests.push(verdict);
    if (gathering) {
      const gate = gathering;
      gate.arrived++;
      if (gate.arrived >= gate.count) {
        gathering = undefined;
        gate.open();
      }
      await gate.release;
    }
    const answer = (
      status: number,
      reason: DpopReason,
      json: unknown,
      headers: Record<string, string> = {},
    ) => {
      verdict.status = status;
      verdict.reason = reason;
      res.writeHead(status, { 'content-type': 'application/json', ...headers });
      res.end(JSON.stringify(json));
    };
    const reject = (reason: DpopReason, error: 'invalid_token' | 'invalid_dpop_proof') =>
      answer(
        401,
        reason,
        { error, reason },
        { 'www-authenticate': `DPoP ${ALGS}, error="${error}"` },
      );

    const authorization = req.headers.authorization ?? '';
    const match = /^(\S+) (\S+)$/.exec(authorization);
    if (!match) {
      answer(401, 'no-token', { error: 'unauthorized' }, { 'www-authenticate': `DPoP ${ALGS}` });
      return;
    }
    const [, scheme, token] = match as unknown as [string, string, string];
    verdict.scheme = scheme.toLowerCase();
    verdict.token = token;
    // RFC 9449 §7.2: a DPoP-bound token presented as a Bearer token is refused.
    if (verdict.scheme !== 'dpop') return reject('not-dpop-scheme', 'invalid_token');

    const raw = req.headers.dpop;
    if (raw === undefined) return reject('no-proof', 'invalid_dpop_proof');
    // Node joins repeated headers with ", ": a JWT has no comma, so one means several proofs.
    if (Array.isArray(raw) || raw.includes(','))
      return reject('several-proofs', 'invalid_dpop_proof');
    verdict.proof = raw;

    let payload: JWTPayload;
    let jwk: Record<string, unknown>;
    try {
      const verified = await jwtVerify(raw, EmbeddedJWK, {
        typ: 'dpop+jwt',
        algorithms: [...DPOP_ALGORITHMS],
      });
      payload = verified.payload;
      jwk = verified.protectedHeader.jwk as Record<string, unknown>;
      verdict.proofJkt = await calculateJwkThumbprint(jwk, 'sha256');
    } catch {
      return reject('bad-proof', 'invalid_dpop_proof');
    }
    verdict.claims = {
      jti: payload.jti,
      htm: payload['htm'],
      htu: payload['htu'],
      iat: payload.iat,
      ath: payload['ath'],
      nonce: payload['nonce'],
    };
    if (typeof payload.jti !== 'string' || payload.jti.length < 16) {
      return reject('bad-proof', 'invalid_dpop_proof');
    }
    // A jti is good once, whatever the outcome of the request that carried it. (Checked after
    // htm, htu and iat, so that a captured proof sent elsewhere is refused for its URL.)
    const replayed = seenJti.has(payload.jti);
    seenJti.add(payload.jti);
    if (payload['htm'] !== method) return reject('htm-mismatch', 'invalid_dpop_proof');
    // RFC 9449 §4.3: htu is compared without query and fragment.
    const htu = typeof payload['htu'] === 'string' ? URL.parse(payload['htu']) : null;
    if (htu) {
      htu.search = '';
      htu.hash = '';
    }
    const expectedHtu = `${origin}${new URL(url, origin).pathname}`;
    if (htu?.href !== expectedHtu) return reject('htu-mismatch', 'invalid_dpop_proof');
    if (typeof payload.iat !== 'number' || Math.abs(Date.now() / 1000 - payload.iat) > window) {
      return reject('iat-out-of-window', 'invalid_dpop_proof');
    }
    if (replayed) return reject('jti-replay', 'invalid_dpop_proof');
    if (nonceRequired && payload['nonce'] !== nonce) {
      answer(
        401,
        'use-dpop-nonce',
        { error: 'use_dpop_nonce' },
        {
          'www-authenticate': `DPoP ${ALGS}, error="use_dpop_nonce", error_description="Resource server requires nonce in DPoP proof"`,
          'dpop-nonce': nonce,
        },
      );
      return;
    }
    if (payload['ath'] !== sha256(token)) return reject('ath-mismatch', 'invalid_dpop_proof');

    const info = await options.introspect(token).catch(() => ({}) as Record<string, unknown>);
    if (info['active'] !== true) return reject('inactive-token', 'invalid_token');
    const cnf = info['cnf'] as { jkt?: unknown } | undefined;
    if (typeof cnf?.jkt !== 'string') return reject('not-bound', 'invalid_token');
    verdict.tokenJkt = cnf.jkt;
    if (cnf.jkt !== verdict.proofJkt) return reject('jkt-mismatch', 'invalid_token');

    // An authenticated redirect: `/redirect?to=<url>` answers 307 to `<url>` once the request
    // passed every check, to test what each hop carries.
    const target = new URL(url, origin);
    if (target.pathname === '/redirect') {
      answer(307, 'ok', { redirect: true }, { location: target.searchParams.get('to') ?? '/' });
      return;
    }
    answer(200, 'ok', {
      ok: true,
      method,
      path: url,
      clientId: info['client_id'],
      sub: info['sub'],
      jkt: cnf.jkt,
      body: body.length > 0 ? body.toString('utf8') : undefined,
    });
  };

  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      handle(req, res, Buffer.concat(chunks)).catch((error: unknown) => {
        res.writeHead(500, { 'content-type': 'text/plain' });
        res.end(String(error));
      });
    });
  });
  const listening = await listenOnLoopback(server);
  origin = listening.origin;

  return {
    origin,
    requests,
    setNonceRequired(required) {
      nonceRequired = required;
    },
    rotateNonce() {
      nonce = newNonce();
      return nonce;
    },
    get nonce() {
      return nonce;
    },
    gather(count) {
      let open = () => {};
      const release = new Promise<void>((resolve) => {
        open = resolve;
      });
      gathering = { count, arrived: 0, release, open };
    },
    async close() {
      if (server.listening) await listening.close();
    },
  };
}
