// Runs test/browser/page.ts in a real Chromium: esbuild bundles the page from the library's
// source, a loopback HTTP server serves it (127.0.0.1 is a secure context, so WebCrypto and
// IndexedDB behave as on HTTPS), and playwright-core drives the system's Chromium with a
// throw-away profile and home directory. No browser is ever downloaded.
import { accessSync, constants } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer } from 'node:http';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';
import { type BrowserContext, chromium, type Page } from 'playwright-core';
import { listenOnLoopback } from '../support/loopback.js';

/**
 * The Chromium to drive: `CHROMIUM_PATH`, else the first `chromium` or `chromium-browser` on
 * `PATH`. Throws with what to install when there is none.
 */
export function chromiumPath(): string {
  const configured = process.env['CHROMIUM_PATH'];
  if (configured) return configured;
  for (const dir of (process.env['PATH'] ?? '').split(delimiter)) {
    if (!dir) continue;
    for (const name of ['chromium', 'chromium-browser']) {
      const candidate = join(dir, name);
      try {
        accessSync(candidate, constants.X_OK);
        return candidate;
      } catch {
        // Not here.
      }
    }
  }
  throw new Error(
    'No Chromium found: install the Debian package `chromium` (or put chromium on PATH), or set CHROMIUM_PATH.',
  );
}

/**
 * Bundles a test page (`page.ts` by default, or another module of this folder) with the
 * library source; returns the ES module's code.
 */
export async function buildPage(entry = 'page.ts'): Promise<string> {
  const result = await build({
    entryPoints: [fileURLToPath(new URL(`./${entry}`, import.meta.url))],
    bundle: true,
    format: 'esm',
    platform: 'browser',
    target: 'es2022',
    write: false,
    sourcemap: 'inline',
    logLevel: 'silent',
  });
  const [output] = result.outputFiles;
  if (!output) throw new Error('esbuild produced no output');
  return output.text;
}

/** The loopback server of the test page. */
export interface PageServer {
  /** `http://127.0.0.1:<port>` */
  readonly origin: string;
  close(): Promise<void>;
}

/** Serves the page (`/`), its bundle (`/page.js`) and an empty OAuth callback (`/callback`). */
export async function startPageServer(script: string): Promise<PageServer> {
  const html =
    '<!doctype html><meta charset="utf-8"><title>tokenwarden browser test</title>' +
    '<script type="module" src="/page.js"></script>';
  const server = createServer((req, res) => {
    const path = new URL(req.url ?? '/', 'http://127.0.0.1').pathname;
    const headers = { 'cache-control': 'no-store' };
    if (path === '/page.js') {
      res.writeHead(200, { ...headers, 'content-type': 'text/javascript; charset=utf-8' });
      res.end(script);
    } else if (path === '/' || path === '/callback') {
      res.writeHead(200, { ...headers, 'content-type': 'text/html; charset=utf-8' });
      res.end(html);
    } else {
      res.writeHead(404, headers);
      res.end();
    }
  });
  const { origin, close } = await listenOnLoopback(server);
  return { origin, close };
}

/** A throw-away Chromium profile, with its own HOME and XDG directories. */
export interface BrowserProfile {
  readonly dir: string;
  remove(): Promise<void>;
}

export async function createProfile(): Promise<BrowserProfile> {
  const dir = await mkdtemp(join(tmpdir(), 'tokenwarden-chromium-'));
  return { dir, remove: () => rm(dir, { recursive: true, force: true }) };
}

/** A running Chromium with the test page loaded. */
export interface BrowserSession {
  readonly context: BrowserContext;
  readonly page: Page;
  /** Everything the page printed to its console, and its uncaught errors. */
  readonly console: string[];
  /** Reloads the page and waits until it is ready (see {@link TabOptions.ready}). */
  reload(): Promise<void>;
  close(): Promise<void>;
}

/** How a page counts as loaded. */
export interface ReadyOptions {
  /**
   * Resolves once the page is ready for the test. By default, waits for the test pages'
   * `window.tw`; a page that is not one of this folder's (an example app) passes its own wait.
   */
  readonly ready?: (page: Page) => Promise<unknown>;
}

export interface LaunchOptions extends ReadyOptions {
  /** The page's viewport, when the test depends on it (a screenshot); else Playwright's default. */
  readonly viewport?: { readonly width: number; readonly height: number };
}

/** Waits for `window.tw`, which every test page of this folder sets once it has loaded. */
export async function testPageReady(page: Page): Promise<void> {
  await page.waitForFunction(() => 'tw' in window, undefined, { timeout: 10_000 });
}

/**
 * Launches Chromium on `profile` (the same profile again = a browser restart) and opens `url`.
 */
export async function launchChromium(
  profile: BrowserProfile,
  url: string,
  options: LaunchOptions = {},
): Promise<BrowserSession> {
  const home = join(profile.dir, 'home');
  const context = await chromium.launchPersistentContext(join(profile.dir, 'user-data'), {
    executablePath: chromiumPath(),
    headless: true,
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
    env: {
      ...process.env,
      HOME: home,
      XDG_CONFIG_HOME: join(home, '.config'),
      XDG_CACHE_HOME: join(home, '.cache'),
      XDG_DATA_HOME: join(home, '.local', 'share'),
    },
    ...(options.viewport ? { viewport: options.viewport } : {}),
    timeout: 30_000,
  });
  const first = context.pages()[0];
  const tab = await openTab(context, url, {
    ...(first ? { page: first } : {}),
    ...(options.ready ? { ready: options.ready } : {}),
  });
  return { context, ...tab, close: () => context.close() };
}

/** One page (tab) of a running Chromium with a test page loaded. */
export interface BrowserTab {
  readonly page: Page;
  /** Everything the page printed to its console, and its uncaught errors. */
  readonly console: string[];
  /** Reloads the page and waits until it is ready (see {@link TabOptions.ready}). */
  reload(): Promise<void>;
}

export interface TabOptions extends ReadyOptions {
  /** An open page to load `url` in, instead of a new tab. */
  readonly page?: Page;
}

/**
 * Opens `url` in a new tab of `context` (or in `options.page`) and waits until it is ready (by
 * default, for `window.tw`). The tabs of one context share the origin's storage, locks and
 * broadcast channels, as tabs of one browser do.
 */
export async function openTab(
  context: BrowserContext,
  url: string,
  options: TabOptions = {},
): Promise<BrowserTab> {
  const tab = options.page ?? (await context.newPage());
  const output: string[] = [];
  tab.on('console', (message) => output.push(`${message.type()}: ${message.text()}`));
  tab.on('pageerror', (error) => output.push(`pageerror: ${error.message}`));
  const wait = options.ready ?? testPageReady;
  const ready = () => wait(tab);
  await tab.goto(url);
  await ready();
  return {
    page: tab,
    console: output,
    async reload() {
      await tab.reload();
      await ready();
    },
  };
}

/**
 * A test page of this folder served on loopback, and the throw-away profile Chromium runs it on:
 * the setup every browser test shares. Start the servers the page talks to after it (they may
 * need {@link BrowserFixture.origin}), then {@link BrowserFixture.launch}.
 */
export interface BrowserFixture {
  /** The page server's origin, `http://127.0.0.1:<port>`. */
  readonly origin: string;
  readonly profile: BrowserProfile;
  /**
   * Launches Chromium on the profile with the page open. Launching again after closing the
   * previous session is a browser restart on the same profile.
   */
  launch(): Promise<BrowserSession>;
  /** Closes the last Chromium launched, stops the page server and removes the profile. */
  close(): Promise<void>;
}

/** Bundles test page `entry`, serves it and creates a profile for it (see {@link BrowserFixture}). */
export async function startBrowserFixture(entry?: string): Promise<BrowserFixture> {
  const [script, profile] = await Promise.all([buildPage(entry), createProfile()]);
  let server: PageServer;
  try {
    server = await startPageServer(script);
  } catch (error) {
    await profile.remove();
    throw error;
  }
  let session: BrowserSession | undefined;
  return {
    origin: server.origin,
    profile,
    async launch() {
      session = await launchChromium(profile, server.origin);
      return session;
    },
    async close() {
      await session?.close();
      await server.close();
      await profile.remove();
    },
  };
}

/**
 * Runs `fn` against the page's `window.tw` (the test API a page script installs) and returns
 * its result. `fn` travels as source text, so it may only use its arguments.
 */
export function inWindow<Api, T, A>(
  page: Page,
  fn: (tw: Api, arg: A) => T,
  arg: A,
): Promise<Awaited<T>> {
  return page.evaluate(
    async ([source, value]) =>
      (new Function(`return ${source}`)() as (tw: Api, arg: A) => T)(
        (window as unknown as { tw: Api }).tw,
        value as A,
      ),
    [fn.toString(), arg] as const,
  ) as Promise<Awaited<T>>;
}
