/**
 * `GET /v1/watch?prefix=`: the change feed of an instance as Server-Sent
 * Events.
 *
 * Each `change` event has the id `EPOCH:SEQ`, where the epoch names this
 * instance process and SEQ numbers its changes. A client that reconnects
 * with that id in `Last-Event-ID` first receives the changes it missed, then
 * `ready`, then live changes. When the missed changes cannot be replayed,
 * because the instance restarted (another epoch) or they left the replay
 * buffer, the stream starts with a `reset` event instead, and the client
 * must read the full state again (`GET /v1/config?prefix=`).
 *
 * Events, with JSON data:
 * - `change`: `{ key, value, deleted, version, update, source, from,
 *   applied_at, seq }`, where `update` is the update id `key@version`.
 * - `reset`: `{ reason, seq }`; the changes before it were not replayed.
 * - `ready`: `{ instance, epoch, seq }`; every change up to `seq` was sent
 *   or reset.
 *
 * @module
 */

import type { Context } from "hono";
import { streamSSE } from "hono/streaming";
import type { ChangeEvent, ChangeFeed } from "../change_feed.ts";
import { drain, StreamQueue } from "./sse.ts";

/**
 * Items one watcher may have waiting before it counts as fallen behind:
 * its queue is dropped and it gets a `reset`.
 */
export const MAX_PENDING_CHANGES = 10_000;

type Item =
  | { type: "change"; event: ChangeEvent }
  | { type: "reset"; reason: string; seq: number }
  | { type: "ready"; seq: number };

/** Handles `GET /v1/watch`. */
export function watchResponse(
  c: Context,
  feed: ChangeFeed,
  instanceId: string,
): Response {
  const prefix = c.req.query("prefix") ?? "";
  const lastId = c.req.header("last-event-id") ?? c.req.query("last_event_id");
  return streamSSE(c, async (stream) => {
    const queue = new StreamQueue<Item>();
    // Subscribing and reading the replay buffer happen in one synchronous
    // step, so every change is either replayed or delivered live, once.
    const unsubscribe = feed.subscribe((event) => {
      if (!event.key.startsWith(prefix)) return;
      if (queue.length >= MAX_PENDING_CHANGES) {
        queue.clear();
        queue.push({
          type: "reset",
          reason:
            `The watcher fell more than ${MAX_PENDING_CHANGES} changes behind; read the full state again`,
          seq: event.seq,
        });
        return;
      }
      queue.push({ type: "change", event });
    }, () => queue.close());
    stream.onAbort(() => {
      unsubscribe();
      queue.close();
    });

    const startSeq = feed.lastSeq;
    const replay: Item[] = [];
    const after = parseEventId(lastId, feed.epoch);
    if (after === "other_epoch") {
      replay.push({
        type: "reset",
        reason:
          "The instance restarted since that event id; read the full state again",
        seq: startSeq,
      });
    } else if (after !== undefined && after > startSeq) {
      // An id this feed never issued; the client's state cannot be trusted.
      replay.push({
        type: "reset",
        reason:
          "That event id is ahead of this instance's feed; read the full state again",
        seq: startSeq,
      });
    } else if (after !== undefined) {
      const missed = feed.since(after, prefix);
      if (missed === undefined) {
        replay.push({
          type: "reset",
          reason:
            "The changes after that event id left the replay buffer; read the full state again",
          seq: startSeq,
        });
      } else {
        for (const event of missed) replay.push({ type: "change", event });
      }
    }
    replay.push({ type: "ready", seq: startSeq });

    try {
      for (const item of replay) await writeItem(item);
      await drain(stream, queue, writeItem);
    } finally {
      unsubscribe();
    }

    async function writeItem(item: Item): Promise<void> {
      switch (item.type) {
        case "change": {
          const event = item.event;
          await stream.writeSSE({
            event: "change",
            id: `${feed.epoch}:${event.seq}`,
            data: JSON.stringify(changeData(event)),
          });
          break;
        }
        case "reset":
          await stream.writeSSE({
            event: "reset",
            id: `${feed.epoch}:${item.seq}`,
            data: JSON.stringify({ reason: item.reason, seq: item.seq }),
          });
          break;
        case "ready":
          await stream.writeSSE({
            event: "ready",
            id: `${feed.epoch}:${item.seq}`,
            data: JSON.stringify({
              instance: instanceId,
              epoch: feed.epoch,
              seq: item.seq,
            }),
          });
          break;
      }
    }
  });
}

/** Returns the JSON data of a `change` event. */
export function changeData(event: ChangeEvent) {
  return {
    key: event.key,
    value: event.value === null ? null : JSON.parse(event.value),
    deleted: event.value === null,
    version: event.version,
    update: `${event.key}@${event.version}`,
    source: event.source,
    from: event.from ?? null,
    applied_at: new Date(event.appliedMs).toISOString(),
    seq: event.seq,
  };
}

/**
 * Parses an event id `EPOCH:SEQ`. Returns the sequence number,
 * `"other_epoch"` for an id of another instance process, or `undefined`
 * when there is no id or it is malformed (the stream then starts live).
 */
export function parseEventId(
  id: string | undefined,
  epoch: string,
): number | "other_epoch" | undefined {
  if (id === undefined || id === "") return undefined;
  const colon = id.lastIndexOf(":");
  if (colon < 0) return undefined;
  const seq = Number(id.slice(colon + 1));
  if (!Number.isSafeInteger(seq) || seq < 0) return undefined;
  return id.slice(0, colon) === epoch ? seq : "other_epoch";
}
