// A Node service that calls an API with the client credentials grant, authenticated with
// private_key_jwt (RFC 7523), keeps its token in an encrypted file whose key lives in the OS
// keychain, exports its metrics through OpenTelemetry, and shuts down cleanly.
//
//   npm run build   # the examples import the package, `tokenwarden`, from dist/
//   ISSUER=https://auth.example.com CLIENT_ID=reports-service \
//   CLIENT_JWK='{"kty":"EC","crv":"P-256","x":"...","y":"...","d":"...","kid":"reports-1"}' \
//   API=https://reports.example.com/v2/daily npx tsx examples/node-service.ts
//
// ISSUER      the authorization server's issuer identifier (metadata discovery, exact match)
// CLIENT_ID   the service's client id, registered for private_key_jwt with the public half of...
// CLIENT_JWK  ...this private JWK (ES256 here; RS256, PS256 and EdDSA keys work too)
// API         the URL to call; its origin is the only one the token may be sent to
//
// The file store's key is kept in the OS keychain (the optional peer dependency
// `@napi-rs/keyring`; on Linux a Secret Service such as gnome-keyring): created on the first run,
// read on the next ones. The process calls the API every 10 s until Ctrl-C.
import {
  ConsoleMetricExporter,
  MeterProvider,
  PeriodicExportingMetricReader,
} from '@opentelemetry/sdk-metrics';
import {
  clientCredentials,
  createWarden,
  isTokenWardenError,
  type PrivateKeyInput,
} from 'tokenwarden';
import { fileStore, keychainKey } from 'tokenwarden/node';
import { instrumentWarden } from 'tokenwarden/otel';

function required(name: string): string {
  const value = process.env[name];
  if (!value) throw new Error(`Set ${name}; see the header of examples/node-service.ts.`);
  return value;
}

const api = new URL(required('API'));
const privateKey = JSON.parse(required('CLIENT_JWK')) as PrivateKeyInput;

const warden = createWarden({
  // One sealed file (JWE, AES-256-GCM), written atomically with mode 0600; the processes of one
  // machine that share it refresh under one lock.
  store: fileStore({
    path: './.reports-tokens.jwe',
    key: keychainKey({ service: 'reports-service' }),
  }),
  logger: ({ level, message, fields }) => {
    if (level !== 'debug') console[level](message, fields); // fields never carry a token
  },
});

const reports = warden.register('reports', {
  source: clientCredentials({
    issuer: required('ISSUER'),
    clientId: required('CLIENT_ID'),
    privateKey,
    clientAuth: 'private_key_jwt',
    resource: api.origin, // RFC 8707: a token for this API only
  }),
  origins: [api.origin],
  keepFresh: true, // refresh on a timer, so a request never waits for a token
});

// The same figures as warden.metrics(), as OpenTelemetry instruments (printed every 30 s here;
// use the OTLP exporter of your choice in production).
const meterProvider = new MeterProvider({
  readers: [
    new PeriodicExportingMetricReader({
      exporter: new ConsoleMetricExporter(),
      exportIntervalMillis: 30_000,
    }),
  ],
});
const instrumentation = instrumentWarden(warden, { meterProvider });

warden.on('refresh', ({ id, reason, expiresAt }) =>
  console.info(`${id}: new token (${reason}) until ${new Date(expiresAt).toISOString()}`),
);
warden.on('reauth-required', ({ id, error }) =>
  console.error(`${id}: the server rejected the client (${error}); check its key`),
);
warden.on('anomaly', ({ id, kind, severity }) => console.warn(`${id}: ${kind} (${severity})`));

async function callOnce(): Promise<void> {
  try {
    const response = await reports.fetch(api);
    console.info(`GET ${api.pathname}: ${response.status}`);
  } catch (error) {
    if (!isTokenWardenError(error)) throw error;
    console.error(error.code, error.message); // messages carry no secret
  }
}

// Listening before the first call: a Ctrl-C while it waits (a slow authorization server) still
// shuts down cleanly.
let timer: ReturnType<typeof setInterval> | undefined;
let stopping = false;
process.once('SIGINT', () => {
  stopping = true;
  clearInterval(timer);
  console.info(JSON.stringify(warden.metrics().credentials['reports'], null, 2));
  void (async () => {
    instrumentation.close();
    await meterProvider.shutdown(); // exports the last figures
    await warden.close(); // stops the refresh timer and flushes the store; the process exits
  })();
});

await callOnce();
if (!stopping) timer = setInterval(() => void callOnce(), 10_000);
