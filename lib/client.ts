/**
 * A typed client of the Grapevine HTTP API, for Deno and browsers: reads,
 * writes, status, update tracking and a reconnecting watch of changes.
 * It uses only `fetch`, streams and timers, so it runs wherever those exist.
 *
 * @module
 */

import type { StatusReport } from "./http/status.ts";
import type { UpdateReport } from "./update_tracker.ts";

/** An entry as the API returns it. */
export interface EntryView {
  key: string;
  value: unknown;
  version: string;
  updated_at: string;
}

/** A change as `watch()` yields it. */
export interface ChangeMessage {
  readonly type: "change";
  /** SSE event id, `EPOCH:SEQ`; pass it as `lastEventId` to resume. */
  readonly id: string;
  readonly key: string;
  /** The new value, or `null` for a delete. */
  readonly value: unknown;
  readonly deleted: boolean;
  readonly version: string;
  /** Update id, `key@version`. */
  readonly update: string;
  /** Source of the change: local, rumor, push or pull. */
  readonly source: string;
  /** Peer the change came from, or `null` for a local write. */
  readonly from: string | null;
  /** When the instance applied it, as an ISO 8601 time. */
  readonly appliedAt: string;
}

/**
 * Yielded when changes may have been missed (the instance restarted, or
 * the watcher fell behind its replay buffer), and at the start when
 * `list: true` was given: the full current state under the prefix, read
 * after the stream reconnected, so that later changes apply on top of it.
 */
export interface ResetMessage {
  readonly type: "reset";
  readonly reason: string;
  readonly entries: EntryView[];
}

/** Yielded each time the stream (re)connects and is live. */
export interface ReadyMessage {
  readonly type: "ready";
  /** Id of the last event covered so far. */
  readonly id: string;
  /** Instance serving the stream. */
  readonly instance: string;
}

/** Message yielded by `watch()`. */
export type WatchMessage = ChangeMessage | ResetMessage | ReadyMessage;

/** Options of {@link GrapevineClient.watch}. */
export interface WatchOptions {
  /** Stops the watch; the iterator then ends without an error. */
  readonly signal?: AbortSignal;
  /** Event id to resume after, from an earlier `change` or `ready`. */
  readonly lastEventId?: string;
  /** Yield a `reset` with the current entries once the first stream is live. */
  readonly list?: boolean;
  /** First reconnect delay in milliseconds; doubles up to `retryMaxMs`. */
  readonly retryMinMs?: number;
  /** Largest reconnect delay in milliseconds. */
  readonly retryMaxMs?: number;
  /**
   * Failed connection attempts in a row after which the iterator throws
   * the last error; unlimited by default.
   */
  readonly maxRetries?: number;
  /** Called before each reconnect wait, with the error and the wait. */
  readonly onRetry?: (error: ClientError, delayMs: number) => void;
}

/** One parsed Server-Sent Event. */
export interface ServerSentEvent {
  readonly event: string;
  readonly data: string;
  /** The last event id seen on the stream so far. */
  readonly id: string | undefined;
}

/**
 * Signs changes for instances that require publisher signatures: stamps a
 * version and signs key, version and value. `PublisherSigner` in
 * `security/signatures.ts` implements it.
 */
export interface ChangeSigner {
  sign(
    key: string,
    value: string | null,
  ): Promise<{ version: readonly [number, number, string]; sig?: string }>;
}

/** Options of a {@link GrapevineClient}. */
export interface ClientOptions {
  /** Milliseconds before a request fails; 10 s by default. */
  readonly timeoutMs?: number;
  /** Bearer token sent with every request: the admin or the read token. */
  readonly token?: string;
  /** Signs every write; needed where instances require signatures. */
  readonly signer?: ChangeSigner;
  /** The fetch function to use, such as one bound to a `Deno.HttpClient`. */
  readonly fetch?: typeof fetch;
}

/** Raised for a failed request; carries the API's error code when there is one. */
export class ClientError extends Error {
  /** HTTP status, or 0 when no response arrived. */
  readonly status: number;
  /** The API's error code, such as `invalid_key`. */
  readonly code: string;

  constructor(message: string, status: number, code: string) {
    super(message);
    this.name = "ClientError";
    this.status = status;
    this.code = code;
  }
}

/**
 * Client of one instance.
 *
 * @example
 * ```ts ignore
 * import { GrapevineClient } from "./client.ts";
 * const client = new GrapevineClient("http://127.0.0.1:8001");
 * await client.put("features.checkout", { enabled: true });
 * const entry = await client.get("features.checkout");
 * ```
 */
export class GrapevineClient {
  /** Base URL of the instance. */
  readonly baseUrl: string;
  readonly #timeoutMs: number;
  readonly #token: string | undefined;
  readonly #signer: ChangeSigner | undefined;
  readonly #fetch: typeof fetch;

  /**
   * @throws {ClientError} with code `invalid_url` when `baseUrl` is not an
   * http:// or https:// URL without a path, such as http://127.0.0.1:8001.
   */
  constructor(baseUrl: string, options: ClientOptions = {}) {
    checkBaseUrl(baseUrl);
    this.baseUrl = baseUrl.replace(/\/$/, "");
    this.#timeoutMs = options.timeoutMs ?? 10_000;
    this.#token = options.token;
    this.#signer = options.signer;
    this.#fetch = options.fetch ?? ((input, init) => fetch(input, init));
  }

  /**
   * Fetches one entry; a missing or deleted key raises a `ClientError` with
   * status 404 whose message states which of the two applies.
   */
  async entry(key: string): Promise<EntryView> {
    return await this.#request<EntryView>("GET", configPath(key));
  }

  /** Reads a key; `undefined` when it does not exist. */
  async get(key: string): Promise<EntryView | undefined> {
    try {
      return await this.entry(key);
    } catch (error) {
      if (error instanceof ClientError && error.status === 404) {
        return undefined;
      }
      throw error;
    }
  }

  /**
   * Sets a key to a JSON value; resolves once the instance committed it.
   * With a signer, the write carries the publisher's version and signature.
   */
  async put(
    key: string,
    value: unknown,
  ): Promise<{ key: string; version: string }> {
    const text = JSON.stringify(value);
    if (text === undefined) {
      throw new ClientError(
        `Value of ${key} has no JSON form`,
        0,
        "invalid_value",
      );
    }
    const headers = await this.#signatureHeaders(key, text);
    return await this.#request("PUT", configPath(key), text, headers);
  }

  /** Deletes a key; with a signer, the delete is signed too. */
  async delete(
    key: string,
  ): Promise<{ key: string; version: string; existed: boolean }> {
    const headers = await this.#signatureHeaders(key, null);
    return await this.#request("DELETE", configPath(key), undefined, headers);
  }

  /** Lists live entries, optionally under a key prefix. */
  async list(prefix = ""): Promise<EntryView[]> {
    const query = prefix ? `?prefix=${encodeURIComponent(prefix)}` : "";
    const body = await this.#request<{ entries: EntryView[] }>(
      "GET",
      `/v1/config${query}`,
    );
    return body.entries;
  }

  /** Sets and deletes many keys in one request; with a signer, signs each. */
  async batch(
    changes: { set?: Record<string, unknown>; delete?: string[] },
  ): Promise<{ count: number; versions: Record<string, string> }> {
    const body: {
      set?: Record<string, unknown>;
      delete?: string[];
      signed?: Record<string, { version: string; sig: string }>;
    } = { ...changes };
    if (this.#signer) {
      const signed: Record<string, { version: string; sig: string }> = {};
      for (const [key, value] of Object.entries(changes.set ?? {})) {
        if (value === undefined) continue;
        signed[key] = await this.#sign(key, JSON.stringify(value));
      }
      for (const key of changes.delete ?? []) {
        signed[key] = await this.#sign(key, null);
      }
      body.signed = signed;
    }
    return await this.#request("POST", "/v1/config", JSON.stringify(body));
  }

  /** Reads the instance's status report. */
  status(): Promise<StatusReport> {
    return this.#request("GET", "/v1/status");
  }

  /**
   * Reports whether this instance has an update (`key@version`), when it
   * applied it and whether it still spreads it.
   */
  update(id: string): Promise<UpdateReport> {
    return this.#request(
      "GET",
      `/v1/updates/${id.split("/").map(encodeURIComponent).join("/")}`,
    );
  }

  /**
   * Watches changes under a key prefix, reconnecting with `Last-Event-ID`
   * after a dropped connection so that no change is missed. When missed
   * changes cannot be replayed, it reads the full state and yields a
   * `reset`. Ends when `signal` aborts or the loop breaks.
   *
   * @throws {ClientError} for a rejected request (HTTP 4xx), or after
   * `maxRetries` failed attempts in a row.
   *
   * @example
   * ```ts ignore
   * const client = new GrapevineClient("http://127.0.0.1:8001");
   * for await (const message of client.watch("features.", { list: true })) {
   *   if (message.type === "change") console.log(message.key, message.value);
   * }
   * ```
   */
  async *watch(
    prefix = "",
    options: WatchOptions = {},
  ): AsyncGenerator<WatchMessage> {
    const retryMinMs = options.retryMinMs ?? 250;
    const retryMaxMs = options.retryMaxMs ?? 10_000;
    const maxRetries = options.maxRetries ?? Infinity;
    const query = prefix ? `?prefix=${encodeURIComponent(prefix)}` : "";
    const url = `${this.baseUrl}/v1/watch${query}`;
    let lastId = options.lastEventId;
    let listPending = options.list ?? false;
    let failures = 0;

    while (!options.signal?.aborted) {
      const controller = new AbortController();
      const abort = () => controller.abort();
      options.signal?.addEventListener("abort", abort);
      let reader: ReadableStreamDefaultReader<Uint8Array> | undefined;
      let failure: ClientError | undefined;
      try {
        let response: Response;
        try {
          response = await this.#fetch(url, {
            headers: {
              accept: "text/event-stream",
              ...(lastId ? { "last-event-id": lastId } : {}),
              ...this.#authorization(),
            },
            signal: controller.signal,
          });
        } catch (error) {
          throw new ClientError(
            `GET ${url} failed: ${(error as Error).message}`,
            0,
            "unreachable",
          );
        }
        if (!response.ok || !response.body) {
          const text = await response.text();
          const error = new ClientError(
            errorMessage(text) ?? `GET ${url} returned HTTP ${response.status}`,
            response.status,
            errorCode(text) ?? "http_error",
          );
          // A rejected request fails the same way on every retry.
          if (response.status >= 400 && response.status < 500) throw error;
          failure = error;
        } else {
          reader = response.body.getReader();
          for await (const event of readServerSentEvents(reader)) {
            const data = JSON.parse(event.data);
            if (event.event === "change") {
              yield toChangeMessage(event.id ?? "", data);
            } else if (event.event === "reset") {
              const entries = await this.list(prefix);
              listPending = false;
              yield { type: "reset", reason: data.reason, entries };
            } else if (event.event === "ready") {
              failures = 0;
              yield {
                type: "ready",
                id: event.id ?? "",
                instance: data.instance,
              };
              if (listPending) {
                const entries = await this.list(prefix);
                listPending = false;
                yield { type: "reset", reason: "initial listing", entries };
              }
            }
            // Only now is the event handled: a reset whose listing failed
            // is asked for again by reconnecting with the previous id.
            lastId = event.id ?? lastId;
          }
          failure = new ClientError(`GET ${url} ended`, 0, "disconnected");
        }
      } catch (error) {
        if (options.signal?.aborted) return;
        if (error instanceof ClientError && error.status >= 400) throw error;
        failure = error instanceof ClientError ? error : new ClientError(
          `GET ${url} failed: ${(error as Error).message}`,
          0,
          "disconnected",
        );
      } finally {
        options.signal?.removeEventListener("abort", abort);
        controller.abort();
        await reader?.cancel().catch(() => {});
      }
      if (options.signal?.aborted) return;
      failures++;
      if (failures > maxRetries) throw failure;
      const ceilingMs = Math.min(retryMaxMs, retryMinMs * 2 ** (failures - 1));
      const delayMs = ceilingMs * (0.5 + Math.random() / 2);
      options.onRetry?.(failure, delayMs);
      await sleep(delayMs, options.signal);
    }
  }

  #authorization(): Record<string, string> {
    return this.#token ? { authorization: `Bearer ${this.#token}` } : {};
  }

  async #sign(
    key: string,
    value: string | null,
  ): Promise<{ version: string; sig: string }> {
    const { version, sig } = await this.#signer!.sign(key, value);
    return { version: version.join("."), sig: sig ?? "" };
  }

  async #signatureHeaders(
    key: string,
    value: string | null,
  ): Promise<Record<string, string>> {
    if (!this.#signer) return {};
    const { version, sig } = await this.#sign(key, value);
    return { "grapevine-version": version, "grapevine-signature": sig };
  }

  /** Sends a request; `body` is JSON text. */
  async #request<T>(
    method: string,
    path: string,
    body?: string,
    extraHeaders: Record<string, string> = {},
  ): Promise<T> {
    const controller = new AbortController();
    const timer = setTimeout(() => controller.abort(), this.#timeoutMs);
    const url = this.baseUrl + path;
    try {
      let response: Response;
      try {
        response = await this.#fetch(url, {
          method,
          headers: {
            ...(body === undefined
              ? {}
              : { "content-type": "application/json" }),
            ...this.#authorization(),
            ...extraHeaders,
          },
          body,
          signal: controller.signal,
        });
      } catch (error) {
        throw new ClientError(
          `${method} ${url} failed: ${
            describeFetchError(
              error,
              controller.signal.aborted,
              this.#timeoutMs,
            )
          }`,
          0,
          "unreachable",
        );
      }
      const text = await response.text();
      let json: unknown;
      try {
        json = JSON.parse(text);
      } catch {
        throw new ClientError(
          `${method} ${url} returned HTTP ${response.status} with a body that is not JSON`,
          response.status,
          "invalid_response",
        );
      }
      if (!response.ok) {
        const error = (json as { error?: { code?: string; message?: string } })
          .error;
        throw new ClientError(
          error?.message ?? `${method} ${url} returned HTTP ${response.status}`,
          response.status,
          error?.code ?? "http_error",
        );
      }
      return json as T;
    } finally {
      clearTimeout(timer);
    }
  }
}

function configPath(key: string): string {
  return `/v1/config/${key.split("/").map(encodeURIComponent).join("/")}`;
}

/**
 * Parses a Server-Sent Events stream as the WHATWG HTML standard defines
 * it: `event`, `data` and `id` fields, comments ignored, one event per blank
 * line.
 */
export async function* readServerSentEvents(
  reader: ReadableStreamDefaultReader<Uint8Array>,
): AsyncGenerator<ServerSentEvent> {
  const decoder = new TextDecoder();
  let buffered = "";
  let event = "";
  let data: string[] = [];
  let id: string | undefined;
  while (true) {
    const { value, done } = await reader.read();
    if (done) return;
    buffered += decoder.decode(value, { stream: true });
    const lines = buffered.split(/\r\n|\r|\n/);
    buffered = lines.pop() ?? "";
    for (const line of lines) {
      if (line === "") {
        if (data.length > 0) {
          yield { event: event || "message", data: data.join("\n"), id };
        }
        event = "";
        data = [];
        continue;
      }
      if (line.startsWith(":")) continue;
      const colon = line.indexOf(":");
      const field = colon < 0 ? line : line.slice(0, colon);
      let text = colon < 0 ? "" : line.slice(colon + 1);
      if (text.startsWith(" ")) text = text.slice(1);
      if (field === "event") event = text;
      else if (field === "data") data.push(text);
      else if (field === "id" && !text.includes("\0")) id = text;
    }
  }
}

function toChangeMessage(
  id: string,
  data: Record<string, unknown>,
): ChangeMessage {
  return {
    type: "change",
    id,
    key: String(data.key),
    value: data.value,
    deleted: Boolean(data.deleted),
    version: String(data.version),
    update: String(data.update),
    source: String(data.source),
    from: typeof data.from === "string" ? data.from : null,
    appliedAt: String(data.applied_at),
  };
}

function errorMessage(text: string): string | undefined {
  try {
    return JSON.parse(text)?.error?.message;
  } catch {
    return undefined;
  }
}

function errorCode(text: string): string | undefined {
  try {
    return JSON.parse(text)?.error?.code;
  } catch {
    return undefined;
  }
}

function sleep(ms: number, signal: AbortSignal | undefined): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      clearTimeout(timer);
      signal?.removeEventListener("abort", done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal?.addEventListener("abort", done);
  });
}

/** Throws a {@link ClientError} for a base URL the client cannot use. */
function checkBaseUrl(baseUrl: string): void {
  let url: URL;
  try {
    url = new URL(baseUrl);
  } catch {
    throw new ClientError(
      `Invalid instance URL ${
        JSON.stringify(baseUrl)
      }: expected a base URL such as http://127.0.0.1:8001`,
      0,
      "invalid_url",
    );
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") {
    throw new ClientError(
      `Invalid instance URL ${baseUrl}: use http:// or https://`,
      0,
      "invalid_url",
    );
  }
  if (url.pathname !== "/" || url.search !== "") {
    throw new ClientError(
      `Invalid instance URL ${baseUrl}: give the instance's base URL without a path, such as ${url.origin}`,
      0,
      "invalid_url",
    );
  }
}

/** Explains why a request got no answer, with a hint for the usual causes. */
function describeFetchError(
  error: unknown,
  timedOut: boolean,
  timeoutMs: number,
): string {
  if (timedOut) return `timed out after ${timeoutMs} ms`;
  const text = `${(error as Error).message} ${
    String((error as Error & { cause?: unknown }).cause ?? "")
  }`;
  if (/refused/i.test(text)) {
    return "connection refused; is the instance running? (start a local fleet with: npx -y deno@2 task start)";
  }
  return (error as Error).message;
}
