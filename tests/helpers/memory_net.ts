/**
 * GossipNodes wired together in memory, with a fake clock, for unit tests
 * of the protocol core. Frames are delivered when `deliver()` runs, in the
 * order they were sent. HTTP anti-entropy sessions that a node requests run
 * to the end in `deliver()` too, against the node whose URL is
 * `http://ID.test`, unless `httpBlocked` says the pair is cut.
 *
 * @module
 */

import { defaultSettings, type Settings } from "../../lib/config.ts";
import {
  type Frame,
  parseFrame,
  type SyncRequest,
} from "../../lib/protocol/messages.ts";
import {
  GossipNode,
  type NodeEvent,
  type NodeState,
  type PersistOp,
} from "../../lib/protocol/node.ts";

interface Pending {
  readonly from: string;
  readonly to: string;
  readonly link: number;
  readonly frame: Frame;
}

/** A set of nodes joined by in-memory links. */
export class MemoryNet {
  now = 1_000_000;
  readonly nodes = new Map<string, GossipNode>();
  readonly events = new Map<string, NodeEvent[]>();
  readonly persisted = new Map<string, PersistOp[]>();
  /** Frames delivered, by receiving node id. */
  readonly received = new Map<string, Frame[]>();
  readonly #pending: Pending[] = [];
  readonly #datagrams: (() => void)[] = [];
  /** Whether `dial` requests open links; off by default, tests link by hand. */
  autoDial = false;
  /** Nodes that neither send nor receive, as if paused. */
  readonly down = new Set<string>();
  /** Link id → [node, peer]. */
  readonly #links = new Map<number, [string, string]>();
  readonly #httpRequests: { from: string; url: string }[] = [];
  #nextLink = 1;
  #seed = 42;

  /** Whether HTTP anti-entropy from one node to another fails. */
  httpBlocked: (from: string, to: string) => boolean = () => false;
  /** HTTP sessions run, as `from>to:ok` or `from>to:failed`. */
  readonly httpSessions: string[] = [];

  /** Deterministic random numbers (a linear congruential generator). */
  random = (): number => {
    this.#seed = (this.#seed * 1103515245 + 12345) % 2147483648;
    return this.#seed / 2147483648;
  };

  /** Adds a node; `dial` requests are ignored, links are made by `link()`. */
  add(
    id: string,
    overrides: Partial<Settings> = {},
    state?: NodeState,
    region = "test",
  ): GossipNode {
    const settings = { ...defaultSettings("local"), ...overrides };
    this.events.set(id, []);
    this.persisted.set(id, []);
    this.received.set(id, []);
    const node = new GossipNode({
      settings,
      self: { id, region, url: `http://${id}.test`, incarnation: 1 },
      now: () => this.now,
      random: this.random,
      state,
      effects: {
        send: (link, frame) => {
          const ends = this.#links.get(link);
          if (!ends) return;
          // Round-trip through JSON and the parser, as a real link would.
          const parsed = parseFrame(
            JSON.stringify(frame),
            settings.maxFrameBytes,
          );
          if (!parsed.ok) {
            throw new Error(
              `Node ${id} sent an invalid frame: ${parsed.message}`,
            );
          }
          const [, peer] = ends;
          const back = this.#peerLink(link);
          if (back !== undefined) {
            this.#pending.push({
              from: id,
              to: peer,
              link: back,
              frame: parsed.frame,
            });
          }
        },
        closeLink: (link) => this.unlinkById(link),
        dial: (url) => {
          if (!this.autoDial) return;
          this.#datagrams.push(() => {
            const target = [...this.nodes.entries()].find(([, node]) =>
              node.self.url === url
            );
            if (!target || this.down.has(target[0])) {
              this.nodes.get(id)?.dialFailed(url);
              return;
            }
            this.link(id, target[0], url);
          });
        },
        syncOverHttp: (url) => this.#httpRequests.push({ from: id, url }),
        datagram: (url, frame) => {
          if (this.down.has(id)) return;
          this.#datagrams.push(() => {
            const target = [...this.nodes.entries()].find(([, node]) =>
              node.self.url === url
            );
            if (!target || this.down.has(target[0])) return;
            const answer = target[1].handleDatagram(frame);
            if (answer) this.nodes.get(id)!.handleDatagram(answer);
          });
        },
        persist: (ops) => this.persisted.get(id)!.push(...ops),
        emit: (event) => this.events.get(id)!.push(event),
      },
    });
    this.nodes.set(id, node);
    return node;
  }

  /** Opens a link between two nodes; `a` dials (the URL `dialedUrl`). */
  link(a: string, b: string, dialedUrl?: string): void {
    const ab = this.#nextLink++;
    const ba = this.#nextLink++;
    this.#links.set(ab, [a, b]);
    this.#links.set(ba, [b, a]);
    const first = this.nodes.get(a)!.linkOpened(
      ab,
      this.nodes.get(b)!.self,
      true,
      dialedUrl,
    );
    if (first !== "accepted") {
      this.#links.delete(ab);
      this.#links.delete(ba);
      return;
    }
    const second = this.nodes.get(b)!.linkOpened(
      ba,
      this.nodes.get(a)!.self,
      false,
    );
    if (second !== "accepted") {
      this.#links.delete(ba);
      this.#links.delete(ab);
      this.nodes.get(a)!.linkClosed(ab);
    }
  }

  /** Closes every link between two nodes. */
  unlink(a: string, b: string): void {
    for (const [link, [from, to]] of [...this.#links]) {
      if ((from === a && to === b) || (from === b && to === a)) {
        this.#links.delete(link);
        this.nodes.get(from)!.linkClosed(link);
      }
    }
  }

  /** Closes a link by id, at both ends. */
  unlinkById(link: number): void {
    const ends = this.#links.get(link);
    if (ends) this.unlink(ends[0], ends[1]);
  }

  /** Delivers frames and runs HTTP sessions until none are left (at most `limit` frames). */
  deliver(limit = 100_000): number {
    let count = 0;
    while (
      (this.#pending.length > 0 || this.#datagrams.length > 0 ||
        this.#httpRequests.length > 0) && count < limit
    ) {
      const http = this.#httpRequests.shift();
      if (http) {
        if (!this.down.has(http.from)) this.#runHttpSync(http);
        continue;
      }
      const datagram = this.#datagrams.shift();
      if (datagram) {
        datagram();
        count++;
        continue;
      }
      const item = this.#pending.shift()!;
      if (!this.#links.has(item.link)) continue;
      if (this.down.has(item.to) || this.down.has(item.from)) continue;
      this.received.get(item.to)!.push(item.frame);
      this.nodes.get(item.to)!.receive(item.link, item.frame);
      count++;
    }
    return count;
  }

  /** Advances the clock and ticks every node, delivering in between. */
  run(ms: number, stepMs = 100): void {
    for (let t = 0; t < ms; t += stepMs) {
      this.now += stepMs;
      for (const [id, node] of this.nodes) {
        if (!this.down.has(id)) node.tick();
      }
      this.deliver();
    }
  }

  /** Writes through one node, as a committed client write. */
  write(id: string, key: string, value: unknown | null): void {
    const node = this.nodes.get(id)!;
    const { entries } = node.stampWrite([
      { key, value: value === null ? null : JSON.stringify(value) },
    ]);
    node.applyLocal(entries);
  }

  #runHttpSync(request: { from: string; url: string }): void {
    const initiator = this.nodes.get(request.from)!;
    const to = /^http:\/\/(.+)\.test$/.exec(request.url)?.[1] ?? "";
    const responder = this.nodes.get(to);
    const driver = initiator.openHttpSync(request.url);
    if (!driver) return;
    if (!responder || this.down.has(to) || this.httpBlocked(request.from, to)) {
      driver.finish("unreachable");
      this.httpSessions.push(`${request.from}>${to}:failed`);
      return;
    }
    let step: SyncRequest | undefined = driver.first();
    for (let rounds = 0; step && rounds < 10_000; rounds++) {
      const response = responder.handleSyncRequest(step, request.from);
      // Round-trip through JSON, as HTTP would.
      step = driver.next(JSON.parse(JSON.stringify(response)));
    }
    driver.finish();
    this.httpSessions.push(`${request.from}>${to}:ok`);
  }

  #peerLink(link: number): number | undefined {
    const [a, b] = this.#links.get(link)!;
    for (const [id, [from, to]] of this.#links) {
      if (from === b && to === a) return id;
    }
    return undefined;
  }
}
