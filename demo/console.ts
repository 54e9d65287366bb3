// Console output of the embedded servers goes through the view: a line written behind the live
// view's back would tear its in-place redraw.
import { format, stripVTControlCharacters } from 'node:util';
import type { View } from './view.js';

/**
 * oidc-provider announces its deliberate development setup with console.warn: the in-memory
 * adapter, the fixture's pre-parsed request bodies, and a runtime notice on Node 20 (which
 * tokenwarden supports). They describe the embedded server, not tokenwarden, so they are dropped;
 * any other message is shown.
 */
const EXPECTED =
  /^oidc-provider WARNING: (Unsupported runtime|a quick start development-only|already parsed request body)/;

/** Routes `console.*` through `view` until the returned function is called. */
export function routeConsole(view: View): () => void {
  const original = {
    log: console.log,
    info: console.info,
    warn: console.warn,
    error: console.error,
  };
  const forward =
    (kind: 'info' | 'warn') =>
    (...args: unknown[]): void => {
      // oidc-provider colours its notices when stderr is a terminal.
      const text = stripVTControlCharacters(format(...args));
      if (!EXPECTED.test(text)) view.line(kind, text);
    };
  console.log = forward('info');
  console.info = forward('info');
  console.warn = forward('warn');
  console.error = forward('warn');
  return () => Object.assign(console, original);
}
