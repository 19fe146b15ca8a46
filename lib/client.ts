/**
 * A typed client of the Grapevine HTTP API, for Deno and browsers.
 *
 * @module
 */

import type { StatusReport } from "./http/status.ts";

/** An entry as the API returns it. */
export interface EntryView {
  key: string;
  value: unknown;
  version: string;
  updated_at: string;
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

  constructor(baseUrl: string, options: { timeoutMs?: number } = {}) {
    this.baseUrl = baseUrl.replace(/\/$/, "");
    this.#timeoutMs = options.timeoutMs ?? 10_000;
  }

  /** Reads a key; `undefined` when it does not exist. */
  async get(key: string): Promise<EntryView | undefined> {
    try {
      return await this.#request<EntryView>("GET", configPath(key));
    } catch (error) {
      if (error instanceof ClientError && error.status === 404) {
        return undefined;
      }
      throw error;
    }
  }

  /** Sets a key to a JSON value; resolves once the instance committed it. */
  put(key: string, value: unknown): Promise<{ key: string; version: string }> {
    return this.#request("PUT", configPath(key), value);
  }

  /** Deletes a key. */
  delete(
    key: string,
  ): Promise<{ key: string; version: string; existed: boolean }> {
    return this.#request("DELETE", configPath(key));
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

  /** Sets and deletes many keys in one request. */
  batch(
    changes: { set?: Record<string, unknown>; delete?: string[] },
  ): Promise<{ count: number; versions: Record<string, string> }> {
    return this.#request("POST", "/v1/config", changes);
  }

  /** Reads the instance's status report. */
  status(): Promise<StatusReport> {
    return this.#request("GET", "/v1/status");
  }

  async #request<T>(method: string, path: string, body?: unknown): Promise<T> {
    const controller = new AbortController();
    const timer = setTimeout(() => controller.abort(), this.#timeoutMs);
    const url = this.baseUrl + path;
    try {
      let response: Response;
      try {
        response = await fetch(url, {
          method,
          headers: body === undefined
            ? {}
            : { "content-type": "application/json" },
          body: body === undefined ? undefined : JSON.stringify(body),
          signal: controller.signal,
        });
      } catch (error) {
        const reason = controller.signal.aborted
          ? `timed out after ${this.#timeoutMs} ms`
          : (error as Error).message;
        throw new ClientError(
          `${method} ${url} failed: ${reason}`,
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
