// Plays the user of the device authorization grant (RFC 8628) against oidc-provider's
// devInteractions pages (a server started with `useOidcServer({ devInteractions: true })`):
// opens the verification URI "on another device", types the user code, confirms it, signs in
// and consents, over plain HTTP with cookies and redirects handled by hand.
import type { DeviceCodePrompt } from '../../src/index.js';

/** A minimal user agent: cookies and redirects by hand, forms parsed from the HTML. */
class UserAgent {
  readonly #cookies = new Map<string, string>();

  async open(url: string, form?: URLSearchParams): Promise<{ url: string; body: string }> {
    let target = url;
    let body: URLSearchParams | undefined = form;
    for (let hops = 0; hops < 10; hops++) {
      const headers: Record<string, string> = {};
      if (this.#cookies.size > 0) {
        headers['cookie'] = [...this.#cookies]
          .map(([name, value]) => `${name}=${value}`)
          .join('; ');
      }
      const init: RequestInit = { method: body ? 'POST' : 'GET', headers, redirect: 'manual' };
      if (body) init.body = body;
      const res = await fetch(target, init);
      for (const cookie of res.headers.getSetCookie()) {
        const [pair] = cookie.split(';');
        const at = (pair as string).indexOf('=');
        const name = (pair as string).slice(0, at);
        const value = (pair as string).slice(at + 1);
        if (value === '' || /expires=Thu, 01 Jan 1970/i.test(cookie)) this.#cookies.delete(name);
        else this.#cookies.set(name, value);
      }
      const location = res.headers.get('location');
      if (res.status >= 300 && res.status < 400 && location) {
        await res.arrayBuffer();
        target = new URL(location, target).href;
        body = undefined;
        continue;
      }
      const text = await res.text();
      if (res.status !== 200) throw new Error(`${target} answered ${res.status}: ${text}`);
      return { url: target, body: text };
    }
    throw new Error('too many redirects');
  }
}

interface Form {
  readonly id: string | undefined;
  readonly action: string;
  readonly fields: URLSearchParams;
  readonly inputs: readonly string[];
}

function decode(text: string): string {
  return text
    .replace(/&quot;/g, '"')
    .replace(/&#39;|&#x27;/g, "'")
    .replace(/&lt;/g, '<')
    .replace(/&gt;/g, '>')
    .replace(/&amp;/g, '&');
}

function attribute(tag: string, name: string): string | undefined {
  const match = new RegExp(`\\s${name}="([^"]*)"`).exec(tag);
  return match ? decode(match[1] as string) : undefined;
}

/** The first form of a page: its action, its hidden fields and the names of all its inputs. */
function firstForm(page: { url: string; body: string }): Form | undefined {
  const match = /<form\b([^>]*)>([\s\S]*?)<\/form>/i.exec(page.body);
  if (!match) return undefined;
  const [, open, inner] = match as unknown as [string, string, string];
  const fields = new URLSearchParams();
  const inputs: string[] = [];
  for (const [tag] of inner.matchAll(/<input\b[^>]*>/gi)) {
    const name = attribute(tag, 'name');
    if (name === undefined) continue;
    inputs.push(name);
    if (attribute(tag, 'type') === 'hidden') fields.set(name, attribute(tag, 'value') ?? '');
  }
  return {
    id: attribute(open, 'id'),
    action: new URL(attribute(open, 'action') ?? page.url, page.url).href,
    fields,
    inputs,
  };
}

/**
 * Plays the user: opens the verification URI on "another device" and types the user code (or
 * opens the complete URI), confirms it, signs in as `login` and consents, through oidc-provider's
 * pages. With `decline`, aborts at the code confirmation instead.
 */
export async function approveDevice(
  prompt: DeviceCodePrompt,
  {
    login = 'device-user',
    decline = false,
    via = 'code',
  }: { login?: string; decline?: boolean; via?: 'code' | 'complete-uri' } = {},
): Promise<void> {
  const agent = new UserAgent();
  let page: { url: string; body: string };
  if (via === 'code') {
    // The page where the user types the code shown on the device.
    page = await agent.open(prompt.verificationUri);
    const input = firstForm(page);
    if (input?.id !== 'op.deviceInputForm') throw new Error(`no code form: ${page.body}`);
    input.fields.set('user_code', prompt.userCode);
    page = await agent.open(input.action, input.fields);
  } else {
    page = await agent.open(prompt.verificationUriComplete as string);
  }
  for (let step = 0; step < 10; step++) {
    if (page.body.includes('Sign-in Success')) return;
    const form = firstForm(page);
    if (!form) throw new Error(`no form on ${page.url}: ${page.body.slice(0, 500)}`);
    const fields = form.fields;
    if (form.inputs.includes('login')) {
      fields.set('login', login);
      fields.set('password', 'any password');
    }
    if (decline && form.id === 'op.deviceConfirmForm') {
      fields.delete('confirm');
      fields.set('abort', 'yes');
      await agent.open(form.action, fields);
      return;
    }
    page = await agent.open(form.action, fields);
  }
  throw new Error(`the sign-in did not finish: ${page.body.slice(0, 500)}`);
}
