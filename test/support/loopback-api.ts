// A small HTTP server on 127.0.0.1 (random port) that plays an API, a token service or a key
// service for the examples' tests: every request is recorded verbatim, and a handler answers it.
import { createServer, type IncomingMessage, type Server } from 'node:http';
import { listenOnLoopback } from './loopback.js';

/** One request the server received. */
export interface ApiRequest {
  readonly method: string;
  /** Path and query as sent. */
  readonly url: string;
  readonly headers: Readonly<Record<string, string | string[] | undefined>>;
  readonly body: string;
}

/** The answer of a handler: a status and a JSON body. */
export interface ApiAnswer {
  readonly status: number;
  readonly json?: unknown;
}

export type ApiHandler = (request: ApiRequest) => ApiAnswer | Promise<ApiAnswer>;

/** A running loopback API. */
export interface LoopbackApi {
  /** `http://127.0.0.1:<port>` */
  readonly origin: string;
  /** Every request received, in order, with the status it was answered. */
  readonly requests: (ApiRequest & { status: number })[];
  close(): Promise<void>;
}

function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

/** Starts a server that answers every request with `handler`'s answer (500 if it throws). */
export async function startLoopbackApi(handler: ApiHandler): Promise<LoopbackApi> {
  const requests: (ApiRequest & { status: number })[] = [];
  const server: Server = createServer((req, res) => {
    void (async () => {
      const request: ApiRequest = {
        method: req.method ?? 'GET',
        url: req.url ?? '/',
        headers: { ...req.headers },
        body: await readBody(req),
      };
      let answer: ApiAnswer;
      try {
        answer = await handler(request);
      } catch (error) {
        answer = { status: 500, json: { error: String(error) } };
      }
      requests.push({ ...request, status: answer.status });
      res.writeHead(answer.status, { 'content-type': 'application/json' });
      res.end(answer.json === undefined ? '' : JSON.stringify(answer.json));
    })();
  });
  const { origin, close } = await listenOnLoopback(server);
  return { origin, requests, close };
}

/** The bearer token of a request's Authorization header, if it has one. */
export function bearerOf(request: { headers: ApiRequest['headers'] }): string | undefined {
  const header = request.headers['authorization'];
  const match = typeof header === 'string' ? /^Bearer (\S+)$/i.exec(header) : null;
  return match?.[1];
}
