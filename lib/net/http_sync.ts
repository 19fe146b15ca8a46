/**
 * Anti-entropy over plain HTTP, for an instance that has no live link:
 * each step of the session is one `POST /v1/sync`. In a fleet with keys
 * each request carries a dial proof over its body, and each response must
 * carry the responder's proof over the request's nonce and the response
 * body; a response without a valid proof fails the session.
 *
 * @module
 */

import {
  MIN_PROTOCOL_VERSION,
  type SyncRequest,
  SyncResponseSchema,
} from "../protocol/messages.ts";
import type { Counters } from "../protocol/counters.ts";
import type { Entry } from "../protocol/entry.ts";
import type { HttpSyncDriver } from "../protocol/node.ts";
import { AUTH_HEADER, type FleetAuth } from "../security/fleet_auth.ts";

/**
 * Runs one session to the end against the instance at `url`. Never throws:
 * failures end the session through `driver.finish(error)`.
 */
export async function runHttpSync(options: {
  url: string;
  from: string;
  driver: HttpSyncDriver;
  timeoutMs: number;
  signal: AbortSignal;
  /** Counts the bytes sent and received as `sync_bytes`. */
  counters?: Counters;
  /** Fleet keys that sign requests and check responses. */
  auth?: FleetAuth;
  /** HTTP client for the requests, such as one that trusts a private CA. */
  client?: Deno.HttpClient;
  /** Asynchronous checks of the entries of a response before they merge. */
  admit?: (entries: readonly Entry[]) => Promise<void>;
}): Promise<void> {
  const { url, from, driver, timeoutMs, signal, counters, auth } = options;
  const endpoint = new URL("/v1/sync", url).href;
  const controller = new AbortController();
  const abort = () => controller.abort();
  signal.addEventListener("abort", abort);
  const timer = setTimeout(abort, timeoutMs);
  try {
    let request: SyncRequest | undefined = driver.first();
    while (request) {
      // Every version reads the version 1 layout of the body.
      const body = JSON.stringify({
        v: MIN_PROTOCOL_VERSION,
        from,
        body: request,
      });
      counters?.inc(
        "sync_bytes",
        { direction: "out", via: "http" },
        body.length,
      );
      const proof = auth?.dialProof("sync", body);
      const response = await fetch(endpoint, {
        method: "POST",
        headers: {
          "content-type": "application/json",
          ...(proof ? { [AUTH_HEADER]: proof.header } : {}),
        },
        body,
        signal: controller.signal,
        client: options.client,
      });
      if (!response.ok) {
        await response.body?.cancel();
        throw new Error(`POST ${endpoint} returned HTTP ${response.status}`);
      }
      const text = await response.text();
      counters?.inc(
        "sync_bytes",
        { direction: "in", via: "http" },
        text.length,
      );
      if (
        proof &&
        !auth!.checkResponse(response.headers.get(AUTH_HEADER), proof, text)
      ) {
        counters?.inc("auth_failures", {
          endpoint: "sync_response",
          reason: "bad_mac",
        });
        throw new Error(
          `POST ${endpoint} returned a response without a valid fleet key proof`,
        );
      }
      const parsed = SyncResponseSchema.safeParse(JSON.parse(text));
      if (!parsed.success) {
        throw new Error(`POST ${endpoint} returned an invalid sync response`);
      }
      await options.admit?.(parsed.data.entries);
      request = driver.next(parsed.data);
    }
    driver.finish();
  } catch (error) {
    const message = controller.signal.aborted && !signal.aborted
      ? `timed out after ${timeoutMs} ms`
      : (error as Error).message;
    driver.finish(message);
  } finally {
    clearTimeout(timer);
    signal.removeEventListener("abort", abort);
  }
}
