/**
 * The discrete-event simulator: many real {@link GossipNode}s in one
 * process, on a simulated clock, joined by a simulated network.
 *
 * Time advances in gossip rounds of `roundMs`. At the start of each round
 * the links of the previous round close, every running node opens links to
 * `contacts` peers chosen uniformly at random, and then ticks once. This is
 * the contact model of the epidemic literature, in which every node talks
 * to random partners each round. A real instance keeps a few long-lived
 * links instead (see docs/THEORY.md). Between round starts the simulator
 * delivers frames and HTTP anti-entropy messages in time order, each after
 * a delay drawn from the network conditions.
 *
 * The acceptor of a link registers its end when the first frame arrives,
 * so at tick time a node's links are its own random contacts. `members`
 * frames are counted and not delivered, because the simulator chooses the
 * contacts itself.
 *
 * @module
 */

import { defaultSettings, type Settings } from "../config.ts";
import { type Frame, parseFrame } from "../protocol/messages.ts";
import type { NodeEvent, NodeState } from "../protocol/node.ts";
import { EventQueue } from "./event_queue.ts";
import {
  handleHttpEvent,
  type HttpEvent,
  type HttpSyncContext,
  startHttpSync,
} from "./http_sync.ts";
import {
  isDialerEnd,
  type NetworkConditions,
  otherEnd,
  type SimLink,
  SimNetwork,
} from "./network.ts";
import {
  type Random,
  sampleDistinct,
  seededRandom,
  streamSeed,
} from "./random.ts";
import { type SimHost, SimNode } from "./sim_node.ts";

/** Simulated wall-clock time at which every run starts: 2024-01-01 UTC. */
export const SIM_EPOCH_MS = Date.UTC(2024, 0, 1);

const DAY_MS = 24 * 3600 * 1000;

/**
 * Settings the simulator changes from the `lan` defaults. Reshuffles are
 * off and one dial slot is enough, because the simulator opens the links,
 * and a node accepts as many links as random contacts bring it.
 */
export const SIM_BASE_SETTINGS: Partial<Settings> = {
  // The experiments reproduce Demers et al.: random peers each round.
  dissemination: "random",
  shuffleIntervalMs: DAY_MS,
  // The experiments model epidemics, not failure detection: probes would
  // travel as datagrams, which the simulator drops, and accuse live nodes.
  probeIntervalMs: DAY_MS,
  probeTimeoutMs: DAY_MS - 1,
  // Contacts are opened by the simulator each round; a large target keeps
  // the overlay from trimming them as it would trim surplus real links.
  activeViewSize: 64,
  maxLinks: 1024,
};

/** Policy for the nodes that open random links at the start of a round. */
export type ContactPolicy = "all" | "rumor_holders";

/** Options of a {@link Simulator}. */
export interface SimulatorOptions {
  /** Number of nodes. */
  readonly nodes: number;
  /** Seed of the whole run; the same seed replays the same run. */
  readonly seed: number;
  /** Settings on top of `lan` defaults and {@link SIM_BASE_SETTINGS}. */
  readonly settings?: Partial<Settings>;
  readonly network?: Partial<NetworkConditions>;
  /** Milliseconds between round starts (default 1000). */
  readonly roundMs?: number;
  /** Random peers each node links to per round (default 1). */
  readonly contacts?: number;
  /**
   * Nodes that open links each round (default `all`). With
   * `rumor_holders`, only nodes with infective rumors do, which is much
   * cheaper when anti-entropy is off.
   */
  readonly contactsFor?: ContactPolicy;
  /** State a node starts with, as if loaded from its store. */
  readonly state?: (index: number) => NodeState | undefined;
  /** Indexes of nodes whose inputs and outputs are recorded. */
  readonly traced?: readonly number[];
  /** Encode and parse every frame as a real link would (slower). */
  readonly validateFrames?: boolean;
}

/** Receives every event of every node. */
export type SimListener = (node: SimNode, event: NodeEvent) => void;

type SimEvent = { kind: "frame"; end: number; frame: Frame } | HttpEvent;

/** Upper bound on events handled within one round, against runaway loops. */
const MAX_EVENTS_PER_ROUND = 50_000_000;

/**
 * A simulated fleet.
 *
 * @example
 * ```ts
 * import { Simulator } from "./simulator.ts";
 * const sim = new Simulator({
 *   nodes: 50,
 *   seed: 1,
 *   settings: { fanout: 1, rumorFirstPush: "next_round" },
 * });
 * sim.write(0, "flag", "true");
 * sim.runRounds(30, () => sim.nodes.every((n) => n.node.get("flag")));
 * ```
 */
export class Simulator {
  readonly nodes: SimNode[];
  readonly network: SimNetwork;
  readonly settings: Settings;
  readonly roundMs: number;
  readonly contacts: number;
  readonly contactsFor: ContactPolicy;
  /** Current simulated time in milliseconds. */
  nowMs = SIM_EPOCH_MS;
  /** Rounds run so far. */
  rounds = 0;
  /** Node ticks plus frames and HTTP messages handled. */
  events = 0;
  /** Random contacts that could not be linked: the peer was stopped or cut off. */
  failedContacts = 0;
  readonly #queue = new EventQueue<SimEvent>();
  readonly #random: Random;
  readonly #listeners: SimListener[] = [];
  readonly #validate: boolean;
  #roundLinks: SimLink[] = [];
  #nextRoundMs: number;
  readonly #httpContext: HttpSyncContext = {
    nodes: () => this.nodes,
    network: () => this.network,
    schedule: (event) =>
      this.#queue.push(this.nowMs + this.network.delayMs(), event),
  };

  constructor(options: SimulatorOptions) {
    const { nodes, seed } = options;
    if (!Number.isInteger(nodes) || nodes < 2) {
      throw new RangeError(
        `Invalid node count ${nodes}: a simulation needs at least 2 nodes`,
      );
    }
    this.roundMs = options.roundMs ?? 1000;
    this.contacts = options.contacts ?? 1;
    this.contactsFor = options.contactsFor ?? "all";
    if (this.contacts < 0 || this.contacts >= nodes) {
      throw new RangeError(
        `Invalid contact count ${this.contacts}: expected 0 to ${nodes - 1}`,
      );
    }
    this.settings = {
      ...defaultSettings("lan"),
      ...SIM_BASE_SETTINGS,
      ...options.settings,
    };
    this.#random = seededRandom(streamSeed(seed, -1));
    this.#validate = options.validateFrames ?? false;
    this.network = new SimNetwork(
      options.network ?? {},
      seededRandom(streamSeed(seed, -2)),
    );
    const host = this.#host();
    const traced = new Set(options.traced ?? []);
    this.nodes = [];
    for (let index = 0; index < nodes; index++) {
      this.nodes.push(
        new SimNode({
          index,
          settings: this.settings,
          seed: streamSeed(seed, index),
          now: () => this.nowMs,
          host,
          state: options.state?.(index),
          traced: traced.has(index),
        }),
      );
    }
    this.#nextRoundMs = this.nowMs + this.roundMs;
  }

  /** Registers a listener for every node event. */
  on(listener: SimListener): void {
    this.#listeners.push(listener);
  }

  /** Writes a key through one node, as a client would; `null` deletes. */
  write(index: number, key: string, value: string | null): void {
    this.#nodeAt(index).write([{ key, value }]);
  }

  /** Number of running nodes. */
  get onlineCount(): number {
    return this.nodes.reduce((count, node) => count + (node.online ? 1 : 0), 0);
  }

  /** Stops a node: its links close and frames to it are dropped. */
  stopNode(index: number): void {
    const node = this.#nodeAt(index);
    if (!node.online) return;
    for (const link of [...this.network.links()]) {
      if (link.dialer === index || link.acceptor === index) {
        this.#closeLink(link);
      }
    }
    node.stop();
  }

  /** Starts a stopped node again from its store. */
  async startNode(index: number): Promise<void> {
    await this.#nodeAt(index).start();
  }

  /**
   * Runs up to `maxRounds` rounds, and stops early once `done` returns true
   * after a round. Returns the number of rounds run.
   */
  runRounds(maxRounds: number, done?: () => boolean): number {
    for (let round = 0; round < maxRounds; round++) {
      this.runRound();
      if (done?.()) return round + 1;
    }
    return maxRounds;
  }

  /** Runs one round: new random links, a tick of every running node, delivery. */
  runRound(): void {
    const startMs = this.#nextRoundMs;
    this.#processBefore(startMs);
    this.nowMs = startMs;
    for (const link of this.#roundLinks) {
      if (link.open) this.#closeLink(link);
    }
    this.#roundLinks = [];
    for (const node of this.nodes) {
      if (!node.online) continue;
      const wantsContacts = this.contactsFor === "all" ||
        node.node.activeRumors > 0;
      if (wantsContacts) this.#openContacts(node);
      node.tick();
      this.events++;
    }
    this.#nextRoundMs = startMs + this.roundMs;
    this.rounds++;
    this.#processBefore(this.#nextRoundMs);
  }

  #nodeAt(index: number): SimNode {
    const node = this.nodes[index];
    if (!node) {
      throw new RangeError(
        `Invalid node index ${index}: expected 0 to ${this.nodes.length - 1}`,
      );
    }
    return node;
  }

  #openContacts(node: SimNode): void {
    const peers = sampleDistinct(
      this.#random,
      this.nodes.length,
      this.contacts,
      node.index,
    );
    for (const peer of peers) {
      const target = this.nodes[peer]!;
      if (!target.online || !this.network.reachable(node.index, peer)) {
        this.failedContacts++;
        continue;
      }
      const link = this.network.open(node.index, peer);
      this.#roundLinks.push(link);
      const decision = node.linkOpened(2 * link.id, target.info, true);
      if (decision !== "accepted") this.#closeLink(link);
    }
  }

  #processBefore(limitMs: number): void {
    let handled = 0;
    while (this.#queue.peekTime() < limitMs) {
      if (++handled > MAX_EVENTS_PER_ROUND) {
        throw new Error(
          `Round at ${this.nowMs} ms handled over ${MAX_EVENTS_PER_ROUND} events; the settings probably make nodes respond to each other without end`,
        );
      }
      const { timeMs, item } = this.#queue.pop()!;
      this.nowMs = timeMs;
      this.events++;
      this.#handle(item);
    }
  }

  #handle(event: SimEvent): void {
    switch (event.kind) {
      case "frame":
        this.#deliver(event.end, event.frame);
        break;
      case "http_request":
      case "http_response":
        handleHttpEvent(this.#httpContext, event);
        break;
    }
  }

  #deliver(end: number, frame: Frame): void {
    const link = this.network.get(end);
    if (!link?.open) {
      this.network.countDropped("closed");
      return;
    }
    const dialerSide = isDialerEnd(end);
    const node = this.nodes[dialerSide ? link.dialer : link.acceptor]!;
    if (!dialerSide && !link.acceptorOpen) {
      const dialer = this.nodes[link.dialer]!;
      const decision = node.linkOpened(end, dialer.info, false);
      if (decision !== "accepted") {
        this.#closeLink(link);
        this.network.countDropped("closed");
        return;
      }
      link.acceptorOpen = true;
    }
    node.receive(end, frame);
  }

  /** Closes a link and calls `linkClosed` on each running node that registered an end. */
  #closeLink(link: SimLink): void {
    if (!link.open) return;
    this.network.close(link);
    const dialer = this.nodes[link.dialer]!;
    if (dialer.online) dialer.linkClosed(2 * link.id);
    const acceptor = this.nodes[link.acceptor]!;
    if (link.acceptorOpen && acceptor.online) {
      acceptor.linkClosed(2 * link.id + 1);
    }
  }

  #send(from: SimNode, end: number, frame: Frame): void {
    const link = this.network.get(end);
    if (!link?.open) {
      this.network.countDropped("closed");
      return;
    }
    this.network.countSent(frame);
    if (frame.type === "members") return;
    const to = isDialerEnd(end) ? link.acceptor : link.dialer;
    if (!this.network.reachable(from.index, to)) {
      this.network.countDropped("partition");
      return;
    }
    if (this.network.lost()) {
      this.network.countDropped("loss");
      return;
    }
    const delivered = this.#validate
      ? roundTrip(frame, from, this.settings)
      : frame;
    this.#queue.push(this.nowMs + this.network.delayMs(), {
      kind: "frame",
      end: otherEnd(end),
      frame: delivered,
    });
  }

  #host(): SimHost {
    return {
      send: (from, end, frame) => this.#send(from, end, frame),
      closeLink: (_from, end) => {
        const link = this.network.get(end);
        if (link) this.#closeLink(link);
      },
      syncOverHttp: (from, url) => startHttpSync(this.#httpContext, from, url),
      emit: (from, event) => {
        for (const listener of this.#listeners) listener(from, event);
      },
    };
  }
}

function roundTrip(frame: Frame, from: SimNode, settings: Settings): Frame {
  const parsed = parseFrame(JSON.stringify(frame), settings.maxFrameBytes);
  if (!parsed.ok) {
    throw new Error(
      `Simulated node ${from.info.id} sent an invalid ${frame.type} frame: ${parsed.message}`,
    );
  }
  return parsed.frame;
}
