// Output. On a terminal: narrative lines scroll while a compact status block stays pinned
// below them, redrawn in place. Elsewhere (a pipe, CI, a test): plain timestamped lines only,
// with a progress line per credential now and then, so logs stay readable and diffable.
import { type Align, formatElapsed, formatMs, table } from './format.js';
import type { CredentialRow } from './stats.js';

export type LineKind = 'step' | 'info' | 'event' | 'status' | 'ok' | 'fail' | 'warn';

/** What the live view shows at one instant. */
export interface Frame {
  readonly elapsedMs: number;
  readonly durationMs: number;
  readonly lifetimeS: number;
  readonly rows: readonly CredentialRow[];
}

export interface View {
  /** One narrative line, prefixed with the time since the start. */
  line(kind: LineKind, text: string): void;
  /** Lines printed as they are (the summary). */
  print(lines: readonly string[]): void;
  /** Starts the live block (terminal) or periodic progress lines (elsewhere). */
  start(frame: () => Frame): void;
  /** Stops redrawing and leaves the last frame on screen. */
  stop(): void;
  /** Everything written so far, without escape codes: the demo checks it for secrets. */
  transcript(): string;
}

export interface ViewOptions {
  readonly stream: NodeJS.WriteStream;
  readonly startedAt: number;
  /** How often plain mode prints progress lines, milliseconds. */
  readonly progressEveryMs: number;
}

const TAGS: Record<LineKind, string> = {
  step: '==>',
  info: '   ',
  event: ' * ',
  status: ' @ ',
  ok: ' ok',
  fail: '!! ',
  warn: ' ! ',
};

const COLORS: Record<LineKind, string> = {
  step: '1',
  info: '0',
  event: '36',
  status: '2',
  ok: '32',
  fail: '1;31',
  warn: '33',
};

const ESC = '\x1b[';
const LIVE_EVERY_MS = 200;

export function createView(options: ViewOptions): View {
  return options.stream.isTTY ? new LiveView(options) : new PlainView(options);
}

abstract class BaseView implements View {
  protected readonly stream: NodeJS.WriteStream;
  protected readonly startedAt: number;
  #transcript: string[] = [];

  constructor(options: ViewOptions) {
    this.stream = options.stream;
    this.startedAt = options.startedAt;
  }

  abstract start(frame: () => Frame): void;
  abstract stop(): void;

  line(kind: LineKind, text: string): void {
    const prefix = `${formatElapsed(Date.now() - this.startedAt)} ${TAGS[kind]}`;
    this.#transcript.push(`${prefix} ${text}`);
    this.write([this.decorate(prefix, kind, text)]);
  }

  print(lines: readonly string[]): void {
    this.#transcript.push(...lines);
    this.write(lines.map((l) => this.decoratePlain(l)));
  }

  transcript(): string {
    return this.#transcript.join('\n');
  }

  protected decorate(prefix: string, _kind: LineKind, text: string): string {
    return `${prefix} ${text}`;
  }

  protected decoratePlain(text: string): string {
    return text;
  }

  protected write(lines: readonly string[]): void {
    if (lines.length > 0) this.stream.write(`${lines.join('\n')}\n`);
  }
}

class PlainView extends BaseView {
  readonly #progressEveryMs: number;
  #timer: ReturnType<typeof setInterval> | undefined;

  constructor(options: ViewOptions) {
    super(options);
    this.#progressEveryMs = options.progressEveryMs;
  }

  start(frame: () => Frame): void {
    this.#timer = setInterval(() => {
      for (const r of frame().rows) {
        this.line(
          'status',
          `${r.id} progress: state=${r.state} expiresIn=${formatMs(r.expiresInMs)} refreshes=${r.refreshes} (background=${r.background}, forced=${r.forced}) requests ok=${r.ok} failed=${r.failed} p50=${formatMs(r.p50)} p95=${formatMs(r.p95)} blocked=${r.blocked} anomalies=${r.anomalies}`,
        );
      }
    }, this.#progressEveryMs);
    // The scenario stops the view; this only guarantees a forgotten timer cannot hold the process.
    this.#timer.unref();
  }

  stop(): void {
    clearInterval(this.#timer);
    this.#timer = undefined;
  }
}

class LiveView extends BaseView {
  readonly #color = process.env['NO_COLOR'] === undefined || process.env['NO_COLOR'] === '';
  #frame: (() => Frame) | undefined;
  #timer: ReturnType<typeof setInterval> | undefined;
  /** Lines of the block currently on screen, to move back over before redrawing. */
  #drawn = 0;

  start(frame: () => Frame): void {
    this.#frame = frame;
    this.stream.write(`${ESC}?25l`); // hide the cursor while redrawing
    this.#redraw([]);
    this.#timer = setInterval(() => this.#redraw([]), LIVE_EVERY_MS);
    this.#timer.unref();
  }

  stop(): void {
    if (this.#frame === undefined) return;
    clearInterval(this.#timer);
    this.#timer = undefined;
    this.#redraw([]);
    this.#frame = undefined;
    this.#drawn = 0; // the last frame stays on screen, above what follows
    this.stream.write(`${ESC}?25h`);
  }

  protected override decorate(prefix: string, kind: LineKind, text: string): string {
    return `${this.#paint('2', prefix)} ${this.#paint(COLORS[kind], text)}`;
  }

  protected override decoratePlain(text: string): string {
    if (/^\s*\[ok\]/.test(text)) return this.#paint('32', text);
    if (/^\s*\[FAIL\]/.test(text)) return this.#paint('1;31', text);
    return text;
  }

  protected override write(lines: readonly string[]): void {
    if (this.#frame === undefined) super.write(lines);
    else this.#redraw(lines);
  }

  /** Erases the block, writes `above` where it was, and draws the block again below them. */
  #redraw(above: readonly string[]): void {
    const frame = this.#frame?.();
    let out = this.#drawn > 0 ? `${ESC}${this.#drawn}A\r${ESC}0J` : '';
    for (const line of above) out += `${line}\n`;
    if (frame) {
      // Truncated to the terminal width: a wrapped line would break the count of lines to erase.
      const width = Math.max(20, (this.stream.columns ?? 100) - 1);
      const block = renderBlock(frame).map((l) => l.slice(0, width));
      out += block.map((l, i) => (i === 0 ? this.#paint('1', l) : l)).join('\n');
      out += '\n';
      this.#drawn = block.length;
    }
    this.stream.write(out);
  }

  #paint(code: string, text: string): string {
    return this.#color && code !== '0' ? `${ESC}${code}m${text}${ESC}0m` : text;
  }
}

function renderBlock(frame: Frame): string[] {
  const seconds = (ms: number) => `${(ms / 1_000).toFixed(1)} s`;
  const title = `tokenwarden demo  ${seconds(frame.elapsedMs)} of ${seconds(frame.durationMs)}  tokens live ${frame.lifetimeS} s  (* refreshing)`;
  const align: Align[] = [
    'left',
    'left',
    'right',
    'right',
    'right',
    'right',
    'right',
    'right',
    'right',
  ];
  const rows = frame.rows.map((r) => [
    r.id,
    r.state,
    formatMs(r.expiresInMs),
    `${r.refreshes} (${r.background} bg, ${r.forced} forced)`,
    `${r.ok}/${r.failed}`,
    formatMs(r.p50),
    formatMs(r.p95),
    String(r.blocked),
    String(r.anomalies),
  ]);
  return [
    title,
    ...table(
      [
        'credential',
        'state',
        'expires in',
        'refreshes',
        'ok/failed',
        'p50',
        'p95',
        'blocked',
        'anomalies',
      ],
      rows,
      { align, minWidths: [10, 8, 10, 20, 11, 8, 8, 7, 9] },
    ),
  ];
}
