import { invalidArgument } from '../errors.js';

/** Whether a URL's host is a loopback address: `localhost`, 127.0.0.0/8 or `[::1]`. */
export function isLoopback(url: URL): boolean {
  const host = url.hostname.toLowerCase();
  if (host === 'localhost' || host.endsWith('.localhost')) return true;
  if (host === '[::1]') return true;
  return /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(host);
}

/** Whether sending a secret to this URL is allowed by transport security: https, or loopback. */
export function isSecureTransport(url: URL): boolean {
  return url.protocol === 'https:' || (url.protocol === 'http:' && isLoopback(url));
}

/** Parses an origin given by the user (`https://api.example.com`), throwing a coded error. */
export function parseOrigin(value: unknown, name: string): string {
  if (typeof value !== 'string' && !(value instanceof URL)) {
    throw invalidArgument(`${name} must be an origin string such as 'https://api.example.com'.`);
  }
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw invalidArgument(
      `${name} is not a valid URL: use an origin such as 'https://api.example.com'.`,
    );
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') {
    throw invalidArgument(`${name} must use http or https.`);
  }
  if (url.username || url.password) {
    throw invalidArgument(`${name} must not contain credentials.`);
  }
  return url.origin;
}

/** Parses an absolute http(s) endpoint URL given by the user. */
export function parseEndpoint(value: unknown, name: string): URL {
  if (typeof value !== 'string' && !(value instanceof URL)) {
    throw invalidArgument(`${name} must be an absolute https URL.`);
  }
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw invalidArgument(`${name} is not a valid absolute URL.`);
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') {
    throw invalidArgument(`${name} must use https (http only for loopback).`);
  }
  if (url.hash) throw invalidArgument(`${name} must not contain a fragment.`);
  return url;
}
