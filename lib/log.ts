/**
 * Structured logging for the process edge: one line per event, JSON or
 * text, with the instance id on every line. Repeats of the same message are
 * rate-limited: after a burst, further repeats within a window are counted
 * and the count is written with the next line that passes.
 *
 * @module
 */

/** Log levels in increasing severity. */
export type Level = "debug" | "info" | "warn" | "error";

const LEVELS: Record<Level, number> = {
  debug: 10,
  info: 20,
  warn: 30,
  error: 40,
};

/** Fields of one log line. */
export type Fields = Record<string, unknown>;

/** Options of a {@link Logger}. */
export interface LoggerOptions {
  readonly level: Level;
  readonly format: "json" | "text";
  /** Fields written on every line, such as the instance id. */
  readonly base: Fields;
  /** Where lines go; standard error by default. */
  readonly write?: (line: string) => void;
  /** Lines of one message allowed per window before repeats are held back. */
  readonly burst?: number;
  /** Length of the rate-limit window in milliseconds. */
  readonly windowMs?: number;
}

interface Window {
  startMs: number;
  count: number;
  suppressed: number;
}

const encoder = new TextEncoder();

/**
 * A structured logger.
 *
 * @example
 * ```ts
 * import { Logger } from "./log.ts";
 * const lines: string[] = [];
 * const log = new Logger({
 *   level: "info", format: "json", base: { instance: "eu-1" },
 *   write: (line) => lines.push(line),
 * });
 * log.info("link up", { peer: "us-1" });
 * JSON.parse(lines[0]!).peer; // "us-1"
 * ```
 */
export class Logger {
  readonly #options: LoggerOptions;
  readonly #windows = new Map<string, Window>();
  readonly #write: (line: string) => void;

  constructor(options: LoggerOptions) {
    this.#options = options;
    this.#write = options.write ??
      ((line) => Deno.stderr.writeSync(encoder.encode(line + "\n")));
  }

  /** Writes a debug line. */
  debug(message: string, fields: Fields = {}): void {
    this.#log("debug", message, fields);
  }

  /** Writes an info line. */
  info(message: string, fields: Fields = {}): void {
    this.#log("info", message, fields);
  }

  /** Writes a warning. */
  warn(message: string, fields: Fields = {}): void {
    this.#log("warn", message, fields);
  }

  /** Writes an error line; an `error` field that is an Error is expanded. */
  error(message: string, fields: Fields = {}): void {
    this.#log("error", message, fields);
  }

  #log(level: Level, message: string, fields: Fields): void {
    if (LEVELS[level] < LEVELS[this.#options.level]) return;
    const suppressed = this.#admit(message);
    if (suppressed === undefined) return;
    const line: Fields = {
      time: new Date().toISOString(),
      level,
      msg: message,
      ...this.#options.base,
      ...fields,
    };
    if (line.error instanceof Error) line.error = line.error.message;
    if (suppressed > 0) line.repeats_suppressed = suppressed;
    this.#write(
      this.#options.format === "json" ? JSON.stringify(line) : toText(line),
    );
  }

  /**
   * Returns how many repeats were held back before this line, or
   * `undefined` when this line is held back too.
   */
  #admit(message: string): number | undefined {
    const burst = this.#options.burst ?? 10;
    const windowMs = this.#options.windowMs ?? 10_000;
    const now = Date.now();
    let window = this.#windows.get(message);
    if (!window || now - window.startMs >= windowMs) {
      const suppressed = window?.suppressed ?? 0;
      window = { startMs: now, count: 0, suppressed: 0 };
      this.#windows.set(message, window);
      if (this.#windows.size > 1000) this.#windows.clear();
      window.count++;
      return suppressed;
    }
    window.count++;
    if (window.count > burst) {
      window.suppressed++;
      return undefined;
    }
    return 0;
  }
}

function toText(line: Fields): string {
  const { time, level, msg, ...rest } = line;
  const pairs = Object.entries(rest).map(([key, value]) =>
    `${key}=${typeof value === "string" ? value : JSON.stringify(value)}`
  );
  return [time, String(level).toUpperCase().padEnd(5), msg, ...pairs].join(" ");
}
