// The browser app of examples/browser-app: a single-page app, a public OAuth client (no secret),
// that signs its user in with the authorization code grant and PKCE, keeps the tokens sealed in
// IndexedDB and bound to a non-extractable DPoP key, and calls its API every 2 seconds. Open it
// in two tabs: they share one sign-in and one refresh (Web Locks + BroadcastChannel), and
// signing out in one signs out both. `serve.ts` bundles this file with esbuild and serves it with
// the page, an authorization server and the API; see there for how to run it.
import {
  authorizationCode,
  createWarden,
  isTokenWardenError,
  type RefreshEvent,
  type RevokeEvent,
} from 'tokenwarden';
import { indexedDbStore } from 'tokenwarden/browser';

/** What serve.ts tells the page at `/config.json`. */
export interface AppConfig {
  /** The authorization server's issuer identifier. */
  readonly issuer: string;
  /** This app's client id at the authorization server. */
  readonly clientId: string;
  /** The API's origin. */
  readonly api: string;
}

/** What the page shows of its last API call; also read by the smoke test. */
export interface ApiCall {
  readonly at: number;
  readonly status: number | undefined;
  /** The error code when the call failed before any answer. */
  readonly error: string | undefined;
  readonly body: unknown;
}

const config = (await (await fetch('/config.json')).json()) as AppConfig;

const signIn = authorizationCode({
  issuer: config.issuer,
  clientId: config.clientId,
  redirectUri: `${location.origin}/callback`,
  scope: ['openid', 'offline_access'],
  postLogoutRedirectUri: `${location.origin}/`,
});
// Every tab of this origin opens the same database: they coordinate through it.
const warden = createWarden({ store: indexedDbStore({ name: 'browser-app' }) });
const me = warden.register('me', {
  source: signIn,
  origins: [config.api],
  dpop: true, // a token read off the wire or out of memory is useless without the key
  keepFresh: true, // refresh before expiry even between calls
});

const $ = (id: string) => document.getElementById(id) as HTMLElement;
const loginButton = $('login') as HTMLButtonElement;
const logoutButton = $('logout') as HTMLButtonElement;
const log = $('log');

function note(line: string): void {
  log.textContent = `${new Date().toLocaleTimeString()} ${line}\n${log.textContent ?? ''}`;
}

warden.on('refresh', ({ reason, expiresAt, rotated }: RefreshEvent) =>
  note(
    `refresh (${reason}${rotated ? ', refresh token rotated' : ''}), valid until ${new Date(expiresAt).toLocaleTimeString()}`,
  ),
);
warden.on('refresh-error', ({ code, failures }) => note(`refresh failed: ${code} (${failures})`));
warden.on('reauth-required', () => note('signed out: sign in again'));
warden.on('revoke', ({ outcome }: RevokeEvent) => note(`revoked: ${outcome}`));
warden.on('blocked', ({ reason, url }) => note(`blocked ${url}: ${reason}`));
warden.on('tamper', () => note('a stored record failed its integrity check'));
warden.on('anomaly', ({ kind, severity }) => note(`anomaly: ${kind} (${severity})`));

let lastCall: ApiCall | undefined;

async function callApi(): Promise<void> {
  // Until a sign-in, don't ask again. (The first call, in state 'empty', is what reads the store:
  // a tab opened or reloaded after a sign-in finds the tokens there.)
  if (me.status().state === 'reauth-required') return;
  try {
    const response = await me.fetch(new URL('/api/me', config.api));
    lastCall = {
      at: Date.now(),
      status: response.status,
      error: undefined,
      body: await response.json(),
    };
  } catch (error) {
    lastCall = {
      at: Date.now(),
      status: undefined,
      error: isTokenWardenError(error) ? error.code : String(error),
      body: undefined,
    };
  }
}

function render(): void {
  const status = me.status();
  const state = $('state');
  state.textContent = status.state;
  state.dataset['state'] = status.state;
  loginButton.disabled = status.state === 'valid' || status.state === 'expired';
  logoutButton.disabled = !loginButton.disabled;
  const inSeconds = (at: number | undefined) =>
    at === undefined ? undefined : `${Math.round((at - Date.now()) / 1000)} s`;
  // status() and metrics() carry no token by design: printing them whole is safe.
  $('status').textContent = JSON.stringify(
    { ...status, expiresIn: inSeconds(status.expiresAt), refreshIn: inSeconds(status.refreshAt) },
    null,
    2,
  );
  const metrics = warden.metrics().credentials['me'];
  $('metrics').textContent = JSON.stringify(
    metrics && {
      requests: metrics.requests,
      ok: metrics.ok,
      unauthorized: metrics.unauthorized,
      retriedAfter401: metrics.retriedAfter401,
      blocked: metrics.blocked,
      refreshes: metrics.refreshes,
      latencyMs: metrics.latencyMs,
      tokenAgeMs: metrics.tokenAgeMs,
    },
    null,
    2,
  );
  $('api').textContent = lastCall
    ? JSON.stringify({ ...lastCall, at: new Date(lastCall.at).toLocaleTimeString() }, null, 2)
    : '-';
}

loginButton.onclick = () => {
  // oidc-provider issues a refresh token for offline_access only after a consent prompt.
  signIn.login({ prompt: 'consent' }).catch((error: unknown) => note(`sign-in failed: ${error}`));
};
logoutButton.onclick = () => {
  signIn
    .logout(me, { endSession: true })
    .catch((error: unknown) => note(`sign-out failed: ${error}`));
};

if (signIn.isRedirect()) {
  try {
    const { claims } = await signIn.handleRedirect();
    $('user').textContent = claims?.sub ?? '?';
    note(`signed in as ${claims?.sub}`);
  } catch (error) {
    note(`sign-in failed: ${isTokenWardenError(error) ? error.code : error}`);
  }
  // The callback URL's code and state are spent: take them out of the address bar and history.
  history.replaceState(null, '', '/');
}

// Exposed for the smoke test (test/integration/example-browser-app.test.ts): JSON only, never a token.
(window as unknown as { app: unknown }).app = {
  status: () => JSON.parse(JSON.stringify(me.status())),
  metrics: () => JSON.parse(JSON.stringify(warden.metrics())),
  lastCall: () => lastCall,
};

render();
setInterval(render, 1_000);
void callApi().then(render);
setInterval(() => void callApi().then(render), 2_000);
