/**
 * Propagation benchmark: real instances on 127.0.0.1; for each update, the
 * time from the acknowledged write until every instance has applied it, and
 * the rumor frames each instance received per update.
 *
 * Baseline in the same run ("star"): the benchmark itself holds a link to
 * every instance and sends each update straight to all of them, one frame
 * each: the one-hop floor. The star updates run on the same fleet right
 * after the gossip updates. Arrival is observed on each instance's change
 * feed (`GET /v1/watch`), the same way for both.
 *
 * @module
 */

import { waitAllAlive } from "../tests/helpers/membership.ts";
import { TestFleet } from "../tests/helpers/process.ts";
import type { StatusReport } from "../lib/http/status.ts";
import { PROTOCOL_VERSION } from "../lib/protocol/messages.ts";
import { gossipUrl } from "../lib/net/link_manager.ts";

/** Latency statistics of one mode, in milliseconds. */
export interface Summary {
  readonly count: number;
  readonly medianMs: number;
  readonly p99Ms: number;
  readonly maxMs: number;
}

/** Results of one fleet size and dissemination mode. */
export interface PropagationResult {
  readonly size: number;
  readonly dissemination: string;
  readonly updates: number;
  readonly gossip: Summary;
  readonly star: Summary;
  /** Gossip frames (rumor, feedback, ihave, graft) received per instance per gossip update. */
  readonly gossipFramesPerInstance: number;
  /** Bytes of rumor traffic received per instance per gossip update (all frame types). */
  readonly gossipBytesPerInstance: number;
}

/** Returns the q-quantile (0..1) of sorted values, nearest rank. */
export function quantile(sorted: readonly number[], q: number): number {
  if (sorted.length === 0) return NaN;
  const index = Math.min(sorted.length - 1, Math.ceil(q * sorted.length) - 1);
  return sorted[Math.max(0, index)]!;
}

/** Rejects with "`what` timed out after `ms` ms" unless `promise` settles first. */
export async function withTimeout<T>(
  promise: Promise<T>,
  ms: number,
  what: string,
): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new Error(`${what} timed out after ${ms} ms`)),
      ms,
    );
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** Returns the count, median, p99 and maximum of samples. */
export function summarize(samples: number[]): Summary {
  const sorted = [...samples].sort((a, b) => a - b);
  return {
    count: sorted.length,
    medianMs: quantile(sorted, 0.5),
    p99Ms: quantile(sorted, 0.99),
    maxMs: sorted[sorted.length - 1] ?? NaN,
  };
}

/** Waits for change events on every instance's feed. */
class ArrivalWatcher {
  readonly #waiters = new Map<
    string,
    { left: Set<string>; done: () => void; last: number }
  >();
  readonly #controllers: AbortController[] = [];
  readonly #readers: Promise<void>[] = [];
  readonly #streams: ReadableStreamDefaultReader<string>[] = [];

  async open(urls: { id: string; url: string }[]): Promise<void> {
    const ready: Promise<void>[] = [];
    for (const { id, url } of urls) {
      const controller = new AbortController();
      this.#controllers.push(controller);
      const response = await withTimeout(
        fetch(`${url}/v1/watch?prefix=bench.`, { signal: controller.signal }),
        15_000,
        `Opening the change feed of ${url}`,
      );
      const opened = Promise.withResolvers<void>();
      ready.push(opened.promise);
      this.#readers.push(this.#read(id, response.body!, opened.resolve));
    }
    await withTimeout(
      Promise.all(ready),
      15_000,
      "Opening the change feeds of every instance",
    );
  }

  /**
   * Resolves with the arrival time at the last instance; rejects, naming the
   * instances still missing the key, after `timeoutMs`.
   */
  expect(
    key: string,
    ids: readonly string[],
    timeoutMs = 30_000,
  ): Promise<number> {
    const { promise, resolve, reject } = Promise.withResolvers<number>();
    const timer = setTimeout(() => {
      this.#waiters.delete(key);
      reject(
        new Error(
          `${key} did not reach ${
            [...waiter.left].join(", ")
          } in ${timeoutMs} ms`,
        ),
      );
    }, timeoutMs);
    const waiter = {
      left: new Set(ids),
      last: 0,
      done: () => {
        clearTimeout(timer);
        resolve(waiter.last);
      },
    };
    this.#waiters.set(key, waiter);
    return promise;
  }

  async close(): Promise<void> {
    // Aborting the fetch alone does not end a body already piped through a
    // decoder, so the readers are cancelled too.
    for (const reader of this.#streams) await reader.cancel().catch(() => {});
    for (const controller of this.#controllers) controller.abort();
    await Promise.allSettled(this.#readers);
  }

  async #read(
    id: string,
    body: ReadableStream<Uint8Array>,
    opened: () => void,
  ) {
    let buffered = "";
    const reader = body.pipeThrough(new TextDecoderStream()).getReader();
    this.#streams.push(reader);
    try {
      while (true) {
        const { done, value: chunk } = await reader.read();
        if (done) break;
        const now = performance.now();
        buffered += chunk;
        const events = buffered.split("\n\n");
        buffered = events.pop() ?? "";
        for (const event of events) {
          if (event.includes("event: ready")) opened();
          if (!event.includes("event: change")) continue;
          const data = event.split("\n").find((line) =>
            line.startsWith("data: ")
          );
          if (!data) continue;
          const key = JSON.parse(data.slice(6)).key as string;
          const waiter = this.#waiters.get(key);
          if (!waiter || !waiter.left.delete(id)) continue;
          waiter.last = Math.max(waiter.last, now);
          if (waiter.left.size === 0) {
            this.#waiters.delete(key);
            waiter.done();
          }
        }
      }
    } catch {
      // Aborted by close().
    }
  }
}

const STAR_MEMBER = {
  id: "bench-star",
  region: "bench",
  url: null,
  incarnation: 1,
};

/** A fake peer holding one link to every instance: the star sender. */
class StarSender {
  /** Why a star link closed before the end of the run, if one did. */
  closedEarly: string | undefined;
  readonly #sockets: WebSocket[] = [];
  #closing = false;
  #timer: ReturnType<typeof setInterval> | undefined;
  #seq = 0;

  async open(urls: string[]): Promise<void> {
    await Promise.all(urls.map(async (url) => {
      const socket = new WebSocket(gossipUrl(url));
      const open = Promise.withResolvers<void>();
      socket.onopen = () => {
        socket.send(JSON.stringify({
          v: PROTOCOL_VERSION,
          type: "hello",
          member: {
            id: "bench-star",
            region: "bench",
            url: null,
            incarnation: 1,
          },
        }));
        open.resolve();
      };
      socket.onerror = () => open.reject(new Error(`cannot link to ${url}`));
      // A star link that closes early would leave its instance to
      // anti-entropy and spoil the floor, so the run fails instead.
      socket.onclose = (event) => {
        if (!this.#closing) {
          this.closedEarly ??=
            `the star link to ${url} closed with code ${event.code} ${event.reason}`;
        }
      };
      socket.onmessage = (event) => {
        const frame = JSON.parse(event.data);
        // Answer probes, or the failure detector declares this peer dead
        // and closes its links.
        if (frame.type === "probe" && frame.target === STAR_MEMBER.id) {
          socket.send(JSON.stringify({
            v: PROTOCOL_VERSION,
            type: "probe_ack",
            seq: frame.seq,
            from: STAR_MEMBER,
            target: STAR_MEMBER.id,
          }));
        }
        // Answer anti-entropy requests so the instances' sessions end.
        if (frame.type === "sync_request") {
          socket.send(JSON.stringify({
            v: PROTOCOL_VERSION,
            type: "sync_response",
            rid: frame.rid,
            body: { diffs: [], entries: [], skipped: [] },
          }));
        }
      };
      // Push first, so that close() also closes a socket that timed out.
      this.#sockets.push(socket);
      await withTimeout(open.promise, 15_000, `Linking to ${url}`);
    }));
    this.#timer = setInterval(() => {
      for (const socket of this.#sockets) {
        socket.send(
          JSON.stringify({
            v: PROTOCOL_VERSION,
            type: "ping",
            seq: this.#seq++,
          }),
        );
      }
    }, 500);
  }

  /**
   * Sends one entry to every instance, one frame each. The entry travels as
   * an anti-entropy push, which an instance applies without spreading it
   * further, so star updates add no gossip traffic among the instances.
   */
  send(key: string, value: string, version: [number, number, string]): void {
    const frame = JSON.stringify({
      v: PROTOCOL_VERSION,
      type: "sync_request",
      rid: this.#seq++,
      body: { nodes: [], want: [], push: [{ key, value, version }] },
    });
    for (const socket of this.#sockets) socket.send(frame);
  }

  async close(): Promise<void> {
    this.#closing = true;
    clearInterval(this.#timer);
    await Promise.all(this.#sockets.map((socket) => {
      if (socket.readyState === WebSocket.CLOSED) return;
      const closed = new Promise((resolve) =>
        socket.addEventListener("close", resolve)
      );
      socket.close();
      return closed;
    }));
  }
}

/** Frame types that carry or steer rumors. */
const GOSSIP_FRAMES = ["rumor", "feedback", "ihave", "graft"];

function gossipFrames(report: StatusReport): number {
  return GOSSIP_FRAMES.reduce(
    (sum, type) => sum + (report.counters[`frames_in{type=${type}}`] ?? 0),
    0,
  );
}

function bytesIn(report: StatusReport): number {
  return report.counters["bytes_in"] ?? 0;
}

/** Updates sent before measuring, to build the eager tree. */
const WARM_UP_UPDATES = 5;

/**
 * Runs the benchmark for one fleet size and mode. The fleet settles for
 * `settleMs` after its membership is complete, before the warm-up updates.
 */
export async function measurePropagation(
  size: number,
  updates: number,
  dissemination: "tree" | "random" | "flood",
  log: (line: string) => void = () => {},
  settleMs = 5000,
): Promise<PropagationResult> {
  const fleet = await TestFleet.start(size, {
    flags: [
      "--log-level",
      "info",
      "--dissemination",
      dissemination,
      // Every link of the benchmark comes from 127.0.0.1, the star's too,
      // and the star's link must not find an instance full.
      "--max-links-per-address",
      "1000",
      "--max-links",
      "64",
    ],
  });
  const watcher = new ArrivalWatcher();
  const star = new StarSender();
  try {
    // Measure the steady state: wait until every instance lists every
    // other as alive, then let the links that start-up opened be trimmed.
    await waitAllAlive(
      fleet.instances,
      fleet.instances.map((instance) => instance.options.id),
      60_000,
    );
    await new Promise((resolve) => setTimeout(resolve, settleMs));
    const ids = fleet.instances.map((instance) => instance.options.id);
    await watcher.open(
      fleet.instances.map((instance) => ({
        id: instance.options.id,
        url: instance.url,
      })),
    );
    await star.open(fleet.instances.map((instance) => instance.url));
    // The first updates of a `tree` fleet go over every link and prune the
    // links that bring duplicates, which builds the tree. They are not
    // measured, in any mode.
    for (let i = 0; i < WARM_UP_UPDATES; i++) {
      const writer = fleet.instances[i % size]!;
      const key = `bench.warmup.${i}`;
      const arrived = watcher.expect(
        key,
        ids.filter((id) => id !== writer.options.id),
      );
      await writer.client.put(key, i);
      await arrived;
    }

    const gossip: number[] = [];
    const starTimes: number[] = [];
    let frames = 0;
    let bytes = 0;
    // Gossip updates first, then star updates on the same fleet. Every
    // instance that takes a star update as an anti-entropy push spreads it
    // as a repair, and those duplicates prune the tree; interleaved star
    // updates would then slow the gossip updates measured after them.
    for (let i = 0; i < updates; i++) {
      // Gossip: write through a random instance; every other one must apply it.
      const writer = fleet.instances[i % size]!;
      const key = `bench.gossip.${i}`;
      const others = ids.filter((id) => id !== writer.options.id);
      const before = await Promise.all(
        fleet.instances.map((instance) => instance.status()),
      );
      const arrived = watcher.expect(key, others);
      await writer.client.put(key, { i, padding: "x".repeat(150) });
      const acked = performance.now();
      gossip.push((await arrived) - acked);
      // Let feedback and duplicates finish before counting frames.
      await new Promise((resolve) => setTimeout(resolve, 30));
      const after = await Promise.all(
        fleet.instances.map((instance) => instance.status()),
      );
      for (let n = 0; n < size; n++) {
        frames += gossipFrames(after[n]!) - gossipFrames(before[n]!);
        bytes += bytesIn(after[n]!) - bytesIn(before[n]!);
      }
      if ((i + 1) % 50 === 0) {
        log(`  N=${size} ${dissemination}: ${i + 1}/${updates} gossip updates`);
      }
    }

    for (let i = 0; i < updates; i++) {
      // Star: the benchmark sends the update to every instance itself.
      const starKey = `bench.star.${i}`;
      const starArrived = watcher.expect(starKey, ids);
      const sent = performance.now();
      star.send(starKey, JSON.stringify({ i, padding: "x".repeat(150) }), [
        Date.now(),
        0,
        "bench-star",
      ]);
      starTimes.push((await starArrived) - sent);
      if (star.closedEarly) throw new Error(star.closedEarly);
      await new Promise((resolve) => setTimeout(resolve, 30));
      if ((i + 1) % 50 === 0) {
        log(`  N=${size} ${dissemination}: ${i + 1}/${updates} star updates`);
      }
    }
    return {
      size,
      dissemination,
      updates,
      gossip: summarize(gossip),
      star: summarize(starTimes),
      // Status requests add no rumor frames, but do add bytes of other frames.
      gossipFramesPerInstance: frames / updates / size,
      gossipBytesPerInstance: bytes / updates / size,
    };
  } finally {
    await star.close();
    await watcher.close();
    await fleet.stop();
  }
}
