/**
 * Anti-entropy over plain HTTP, for an instance that has no live link:
 * each step of the session is one `POST /v1/sync`.
 *
 * @module
 */

import {
  PROTOCOL_VERSION,
  type SyncRequest,
  SyncResponseSchema,
} from "../protocol/messages.ts";
import type { Counters } from "../protocol/counters.ts";
import type { HttpSyncDriver } from "../protocol/node.ts";

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
}): Promise<void> {
  const { url, from, driver, timeoutMs, signal, counters } = options;
  const endpoint = new URL("/v1/sync", url).href;
  const controller = new AbortController();
  const abort = () => controller.abort();
  signal.addEventListener("abort", abort);
  const timer = setTimeout(abort, timeoutMs);
  try {
    let request: SyncRequest | undefined = driver.first();
    while (request) {
      const body = JSON.stringify({ v: PROTOCOL_VERSION, from, body: request });
      counters?.inc(
        "sync_bytes",
        { direction: "out", via: "http" },
        body.length,
      );
      const response = await fetch(endpoint, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body,
        signal: controller.signal,
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
      const parsed = SyncResponseSchema.safeParse(JSON.parse(text));
      if (!parsed.success) {
        throw new Error(`POST ${endpoint} returned an invalid sync response`);
      }
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
