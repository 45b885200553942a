import type { BuildEvent } from '../build/builder.js';

/**
 * BuildKit-style TTY progress for `berth build`: a header, one line per step (CACHED/ERROR/CANCELED marked), the last
 * output lines of running steps dimmed under them, redrawn in place. ProgressState and renderFrame are pure (state ->
 * lines, clock passed in); TtyProgress owns the timer and the ANSI cursor writing.
 */

/** How many of a running step's last output lines show under it (as BuildKit). */
export const LOG_LINES = 6;
/** Redraw period while something changed or a step runs (~10 Hz). */
export const REDRAW_MS = 100;

/** One step (a progress vertex) as the display knows it. */
export interface StepProgress {
  id: number;
  name: string;
  /** Clock time of its `step` event. */
  started: number;
  /** Clock time it ended (done, error, or canceled at the end of a failed build). */
  ended?: number;
  /** Duration the builder reported with `done`. */
  ms?: number;
  cached: boolean;
  error: boolean;
  canceled: boolean;
  /** Sub-lines shown under the step for good: why the cache missed, image names. */
  notes: string[];
  /** The last complete output lines (at most LOG_LINES), cleaned for the terminal. */
  log: string[];
  /** Output after the last newline, raw. */
  partial: string;
}

/** The build as the display knows it, fed with events; `dirty` says whether a redraw would show something new. */
export class ProgressState {
  readonly steps: StepProgress[] = [];
  readonly warnings: string[] = [];
  private readonly byId = new Map<number, StepProgress>();
  outcome: 'ok' | 'error' | undefined;
  endedAt: number | undefined;
  dirty = true;

  constructor(readonly startedAt: number) {}

  /** Whether some step has started and not ended (its timer ticks). */
  get running(): boolean {
    return this.steps.some((s) => s.ended === undefined);
  }

  apply(e: BuildEvent, now: number): void {
    if (e.type === 'warning') {
      this.warnings.push(e.message);
      return;
    }
    this.dirty = true;
    if (e.type === 'step') {
      const s: StepProgress = { id: e.id, name: e.name, started: now, cached: false, error: false, canceled: false, notes: [], log: [], partial: '' };
      this.steps.push(s);
      this.byId.set(e.id, s);
      return;
    }
    if (e.type === 'image') {
      const names = e.names.map((n) => `naming to ${n}`);
      this.steps.push({ id: 0, name: 'exporting to image', started: now, ended: now, ms: 0, cached: false, error: false, canceled: false, notes: [`writing image ${e.id}`, ...names], log: [], partial: '' });
      return;
    }
    const s = this.byId.get(e.id);
    if (!s) return;
    switch (e.type) {
      case 'cached': s.cached = true; break;
      case 'miss': s.notes.push(`cache miss: ${e.reason}`); break;
      case 'output': {
        const lines = (s.partial + e.text).split('\n');
        s.partial = lines.pop() ?? '';
        s.log.push(...lines.map(cleanLine));
        if (s.log.length > LOG_LINES) s.log.splice(0, s.log.length - LOG_LINES);
        break;
      }
      case 'done':
        s.ended = now;
        s.ms = e.ms;
        break;
      case 'error':
        s.ended = now;
        s.error = true;
        break;
    }
  }

  /** The build ended: steps still running were canceled by the failure. */
  finish(ok: boolean, now: number): void {
    this.outcome = ok ? 'ok' : 'error';
    this.endedAt = now;
    for (const s of this.steps) {
      if (s.ended !== undefined) continue;
      s.ended = now;
      s.canceled = true;
    }
    this.dirty = true;
  }
}

export interface FrameOptions {
  /** The clock for running timers. */
  now: number;
  /** Terminal width; every line stays within columns - 1 so the cursor never sits in a pending wrap. */
  columns: number;
  /** Terminal height: a live frame keeps to rows - 2 lines, dropping finished steps first. Undefined: no limit. */
  rows?: number;
  /** SGR colors (blue done, red error, yellow canceled, dim output); off for NO_COLOR. */
  color: boolean;
  /** The last frame: every line, whatever the height. */
  final?: boolean;
}

const SGR = { blue: '\x1b[34m', red: '\x1b[31m', yellow: '\x1b[33m', dim: '\x1b[2m', reset: '\x1b[0m' };

/** The lines of one frame (without newlines). */
export function renderFrame(s: ProgressState, o: FrameOptions): string[] {
  const width = Math.max(1, o.columns - 1);
  const end = s.endedAt ?? o.now;
  const completed = s.steps.filter((x) => x.ended !== undefined).length;
  const status = s.outcome === 'ok' ? ' FINISHED' : s.outcome === 'error' ? ' ERROR' : '';
  const header = fit(`[+] Building ${seconds(end - s.startedAt)} (${completed}/${s.steps.length})${status}`, width);
  const paint = (text: string, color: string | undefined) => (o.color && color ? color + text + SGR.reset : text);

  const blocks: { done: boolean; lines: string[] }[] = [];
  for (const step of s.steps) {
    const mark = step.error ? 'ERROR ' : step.canceled ? 'CANCELED ' : step.cached ? 'CACHED ' : '';
    const ms = step.ms ?? (step.ended ?? o.now) - step.started;
    const color = step.ended === undefined ? undefined : step.error ? SGR.red : step.canceled ? SGR.yellow : SGR.blue;
    const lines = [paint(withTimer(` => ${mark}${oneLine(step.name)}`, seconds(ms), width), color)];
    for (const n of step.notes) lines.push(paint(fit(` => => ${oneLine(n)}`, width), color));
    if (step.ended === undefined) {
      const log = step.partial ? [...step.log, cleanLine(step.partial)] : step.log;
      for (const l of log.slice(-LOG_LINES)) lines.push(paint(fit(` => => # ${l}`, width), SGR.dim));
    }
    blocks.push({ done: step.ended !== undefined, lines });
  }

  if (!o.final && o.rows !== undefined) {
    const limit = Math.max(1, o.rows - 2);
    let total = blocks.reduce((n, b) => n + b.lines.length, 0);
    // Finished steps scroll away first, so the running ones stay in view.
    for (let i = 0; i < blocks.length && total > limit;) {
      if (blocks[i]!.done) {
        total -= blocks[i]!.lines.length;
        blocks.splice(i, 1);
      } else i++;
    }
    const body = blocks.flatMap((b) => b.lines);
    return [header, ...body.slice(Math.max(0, body.length - limit))];
  }
  return [header, ...blocks.flatMap((b) => b.lines)];
}

/** "1.2s": tenths of a second, as BuildKit. */
function seconds(ms: number): string {
  return `${(Math.max(0, ms) / 1000).toFixed(1)}s`;
}

/** At most `width` characters (code points). */
export function fit(text: string, width: number): string {
  const cps = Array.from(text);
  return cps.length <= width ? text : cps.slice(0, width).join('');
}

/** The text, cut to leave room for the timer, which ends at `width`. */
function withTimer(text: string, timer: string, width: number): string {
  const room = width - timer.length - 1;
  if (room < 1) return fit(text, width);
  const t = fit(text, room);
  return t + ' '.repeat(room - Array.from(t).length + 1) + timer;
}

/** Names may hold newlines (heredocs) or tabs: one terminal line. */
function oneLine(text: string): string {
  return cleanLine(text.replace(/[\r\n\t]+/g, ' '));
}

/**
 * An output line as a terminal would leave it, minus anything that could move the cursor: what follows the last
 * carriage return (progress bars), tabs expanded, escape sequences and control characters dropped.
 */
export function cleanLine(raw: string): string {
  let line = raw.replace(/\r+$/, '');
  const cr = line.lastIndexOf('\r');
  if (cr >= 0) line = line.slice(cr + 1);
  line = line.replace(/\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)?|\x1b[@-_]?/g, '');
  let out = '';
  for (const ch of line) {
    if (ch === '\t') out += ' '.repeat(8 - (Array.from(out).length % 8));
      else if (!/[\x00-\x1f\x7f-\x9f]/.test(ch)) out += ch;
  }
  return out;
}

/** Which renderer a `--progress` mode means: auto is tty on a terminal (unless TERM=dumb), plain elsewhere. */
export function progressMode(requested: string, stderrIsTty: boolean, term: string | undefined): string {
  if (requested !== 'auto') return requested;
  return stderrIsTty && term !== 'dumb' ? 'tty' : 'plain';
}

/** Where frames go: a stream, with the terminal size when it is one. */
export interface FrameSink {
  write(text: string): unknown;
  columns?: number;
  rows?: number;
}

export interface TtyProgressOptions {
  color: boolean;
  /** Milliseconds; REDRAW_MS by default. */
  interval?: number;
  clock?: () => number;
}

const HIDE_CURSOR = '\x1b[?25l';
const SHOW_CURSOR = '\x1b[?25h';
const ERASE_LINE_END = '\x1b[K';
const ERASE_BELOW = '\x1b[J';

/**
 * Draws ProgressState frames on a terminal: each redraw moves the cursor up over the last frame and overwrites it.
 * The timer starts with the first event and stops at finish(), which draws the final frame and then the warnings.
 * Forced onto a non-terminal it still writes the escapes (as docker buildx does), sized 80 columns.
 */
export class TtyProgress {
  private readonly state: ProgressState;
  private readonly clock: () => number;
  private timer: NodeJS.Timeout | undefined;
  private drawn = 0;
  private finished = false;

  constructor(private readonly out: FrameSink, private readonly o: TtyProgressOptions) {
    this.clock = o.clock ?? Date.now;
    this.state = new ProgressState(this.clock());
  }

  readonly onEvent = (e: BuildEvent): void => {
    if (this.finished) return;
    this.state.apply(e, this.clock());
    if (!this.timer) {
      this.timer = setInterval(() => this.tick(), this.o.interval ?? REDRAW_MS);
      this.timer.unref();
    }
  };

  /** Draws the final frame (FINISHED or ERROR) and the warnings; later calls do nothing. */
  finish(ok: boolean): void {
    if (this.finished) return;
    this.finished = true;
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    this.state.finish(ok, this.clock());
    this.draw(true);
    for (const w of this.state.warnings) this.out.write(`WARNING: ${w}\n`);
  }

  private tick(): void {
    if (this.state.dirty || this.state.running) this.draw(false);
  }

  private draw(final: boolean): void {
    const lines = renderFrame(this.state, {
      now: this.clock(), columns: this.out.columns || 80, ...(this.out.rows ? { rows: this.out.rows } : {}), color: this.o.color, final,
    });
    let text = HIDE_CURSOR + (this.drawn ? `\x1b[${this.drawn}A\r` : '');
    for (const l of lines) text += l + ERASE_LINE_END + '\n';
    this.out.write(text + ERASE_BELOW + SHOW_CURSOR);
    this.drawn = lines.length;
    this.state.dirty = false;
  }
}
