/**
 * `GET /v1/events`: the update stream that the dashboard reads from every
 * instance, as Server-Sent Events.
 *
 * Events, with JSON data:
 * - `hello`, first on each connection: `{ instance, region, url, updates }`,
 *   where `updates` contains the reports of the most recent updates, newest
 *   first. A reconnecting client starts over from it, so the stream has no
 *   event ids.
 * - `update`: one {@link UpdateReport}, sent when this instance applies an
 *   update or stops spreading it.
 *
 * @module
 */

import type { Context } from "hono";
import { streamSSE } from "hono/streaming";
import type { MemberInfo } from "../protocol/messages.ts";
import type { UpdateReport, UpdateTracker } from "../update_tracker.ts";
import { drain, StreamQueue } from "./sse.ts";

/** Updates listed in the `hello` event. */
export const HELLO_UPDATES = 50;

/** Reports one client may have waiting; past it the stream is closed. */
const MAX_PENDING_REPORTS = 10_000;

/** Milliseconds a browser waits before it reconnects a dropped stream. */
const RETRY_MS = 1000;

/** Parts of an instance that the update stream reads. */
export interface UpdateStreamSource {
  readonly tracker: UpdateTracker;
  /** Aborted when the instance stops; open streams then end. */
  readonly stopSignal: AbortSignal;
  readonly node: { readonly self: MemberInfo };
  updateReport(id: string): UpdateReport;
}

/** Handles `GET /v1/events`. */
export function eventsResponse(
  c: Context,
  source: UpdateStreamSource,
): Response {
  return streamSSE(c, async (stream) => {
    const queue = new StreamQueue<UpdateReport>();
    const unsubscribe = source.tracker.subscribe((id) => {
      if (queue.length >= MAX_PENDING_REPORTS) {
        // The client reads too slowly; it reconnects and starts from hello.
        queue.close();
        return;
      }
      queue.push(source.updateReport(id));
    });
    const stop = () => queue.close();
    source.stopSignal.addEventListener("abort", stop);
    if (source.stopSignal.aborted) stop();
    stream.onAbort(() => {
      unsubscribe();
      queue.close();
    });
    try {
      const self = source.node.self;
      await stream.writeSSE({
        event: "hello",
        retry: RETRY_MS,
        data: JSON.stringify({
          instance: self.id,
          region: self.region,
          url: self.url,
          updates: source.tracker.recent(HELLO_UPDATES)
            .map((id) => source.updateReport(id)),
        }),
      });
      await drain(stream, queue, async (report) => {
        await stream.writeSSE({
          event: "update",
          data: JSON.stringify(report),
        });
      });
    } finally {
      unsubscribe();
      source.stopSignal.removeEventListener("abort", stop);
    }
  });
}
