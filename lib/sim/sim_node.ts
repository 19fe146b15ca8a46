/**
 * One simulated instance: a real {@link GossipNode}, its in-memory store
 * and counters, and its own seeded random stream.
 *
 * Every call into the node goes through this wrapper, which records it when
 * the node is traced (see trace.ts). Stopping a node drops its GossipNode
 * and keeps its store, and starting it again builds a new GossipNode from
 * what the store holds, as a restarted process would.
 *
 * @module
 */

import { Counters } from "../protocol/counters.ts";
import type { Frame, MemberInfo } from "../protocol/messages.ts";
import type { SyncRequest, SyncResponse } from "../protocol/messages.ts";
import {
  type Change,
  GossipNode,
  type HttpSyncDriver,
  type LinkDecision,
  type NodeEffects,
  type NodeEvent,
  type NodeSettings,
  type NodeState,
  type PersistOp,
} from "../protocol/node.ts";
import { MemoryStore } from "../store/memory_store.ts";
import { type Random, seededRandom } from "./random.ts";
import type { Trace, TraceInput, TraceOutput } from "./trace.ts";

/** Receiver of a simulated node's effects. */
export interface SimHost {
  send(from: SimNode, end: number, frame: Frame): void;
  closeLink(from: SimNode, end: number): void;
  syncOverHttp(from: SimNode, url: string): void;
  emit(from: SimNode, event: NodeEvent): void;
}

/** Options of a {@link SimNode}. */
export interface SimNodeOptions {
  readonly index: number;
  readonly settings: NodeSettings;
  /** Seed of the node's random stream. */
  readonly seed: number;
  readonly now: () => number;
  readonly host: SimHost;
  /** State the node starts with, as if loaded from its store. */
  readonly state?: NodeState;
  /** Whether to record the node's inputs and outputs. */
  readonly traced?: boolean;
}

/** Returns the id of the simulated node with an index: `n0`, `n1`, … */
export function nodeId(index: number): string {
  return `n${index}`;
}

/** Returns the base URL of the simulated node with an index. */
export function nodeUrl(index: number): string {
  return `http://n${index}.sim`;
}

/** One simulated instance. */
export class SimNode {
  readonly index: number;
  readonly info: MemberInfo;
  readonly store = new MemoryStore();
  /** Counters kept across restarts. */
  readonly counters = new Counters();
  /** Inputs and outputs, when the node is traced. */
  readonly trace: Trace | undefined;
  /** Dial requests, which the simulator counts and ignores. */
  dials = 0;
  readonly #settings: NodeSettings;
  readonly #random: Random;
  readonly #now: () => number;
  readonly #host: SimHost;
  #node: GossipNode | undefined;
  #tracing: boolean;

  constructor(options: SimNodeOptions) {
    const { index, settings, seed, now, host, state } = options;
    this.index = index;
    this.info = {
      id: nodeId(index),
      region: "sim",
      url: nodeUrl(index),
      incarnation: 1,
    };
    this.#settings = settings;
    this.#random = seededRandom(seed);
    this.#now = now;
    this.#host = host;
    this.#tracing = options.traced ?? false;
    if (state) this.#commit(stateOps(state));
    if (options.traced) {
      this.trace = {
        settings,
        self: this.info,
        seed,
        startMs: now(),
        state,
        inputs: [],
        outputs: [],
      };
    }
    this.#node = this.#build(state);
  }

  /** Whether the node is running. */
  get online(): boolean {
    return this.#node !== undefined;
  }

  /**
   * The running GossipNode.
   *
   * @throws {Error} when the node is stopped.
   */
  get node(): GossipNode {
    if (!this.#node) {
      throw new Error(
        `Simulated node ${this.info.id} is stopped; start it before calling it`,
      );
    }
    return this.#node;
  }

  /**
   * Stops the node; its store keeps what was committed. A trace ends here,
   * because a replay covers one GossipNode from its creation.
   */
  stop(): void {
    this.#node = undefined;
    this.#tracing = false;
  }

  /** Starts a stopped node again from the state in its store. */
  async start(): Promise<void> {
    if (this.#node) return;
    const stored = await this.store.load();
    this.#node = this.#build(stored);
  }

  linkOpened(end: number, peer: MemberInfo, outbound: boolean): LinkDecision {
    if (this.#tracing) {
      this.#record({
        atMs: this.#now(),
        call: "linkOpened",
        end,
        peer,
        outbound,
      });
    }
    const decision = this.node.linkOpened(end, peer, outbound);
    this.#returned("linkOpened", decision);
    return decision;
  }

  linkClosed(end: number): void {
    if (this.#tracing) {
      this.#record({ atMs: this.#now(), call: "linkClosed", end });
    }
    this.node.linkClosed(end);
  }

  receive(end: number, frame: Frame): void {
    if (this.#tracing) {
      this.#record({ atMs: this.#now(), call: "receive", end, frame });
    }
    this.node.receive(end, frame);
  }

  tick(): void {
    if (this.#tracing) this.#record({ atMs: this.#now(), call: "tick" });
    this.node.tick();
  }

  /** Writes changes as a client would: stamp, commit, then apply. */
  write(changes: Change[]): void {
    if (this.#tracing) {
      this.#record({ atMs: this.#now(), call: "write", changes });
    }
    const { entries, ops } = this.node.stampWrite(changes);
    this.#commit(ops);
    this.node.applyLocal(entries);
  }

  handleSyncRequest(request: SyncRequest, from: string): SyncResponse {
    if (this.#tracing) {
      this.#record({
        atMs: this.#now(),
        call: "handleSyncRequest",
        from,
        request,
      });
    }
    const response = this.node.handleSyncRequest(request, from);
    this.#returned("handleSyncRequest", response);
    return response;
  }

  /** Opens an HTTP anti-entropy session; see {@link GossipNode.openHttpSync}. */
  openHttpSync(peer: string): HttpSyncDriver | undefined {
    if (this.#tracing) {
      this.#record({ atMs: this.#now(), call: "httpSyncOpen", peer });
    }
    const driver = this.node.openHttpSync(peer);
    if (!driver) return undefined;
    return {
      first: () => driver.first(),
      next: (response) => {
        if (this.#tracing) {
          this.#record({ atMs: this.#now(), call: "httpSyncNext", response });
        }
        const request = driver.next(response);
        this.#returned("httpSyncNext", request);
        return request;
      },
      finish: (error) => {
        if (this.#tracing) {
          this.#record({ atMs: this.#now(), call: "httpSyncFinish", error });
        }
        driver.finish(error);
      },
    };
  }

  #build(state: NodeState | undefined): GossipNode {
    return new GossipNode({
      settings: this.#settings,
      self: this.info,
      now: this.#now,
      random: this.#random,
      state,
      counters: this.counters,
      effects: this.#effects(),
    });
  }

  #effects(): NodeEffects {
    return {
      send: (end, frame) => {
        if (this.#tracing) {
          this.#output({ atMs: this.#now(), effect: "send", end, frame });
        }
        this.#host.send(this, end, frame);
      },
      closeLink: (end, reason) => {
        if (this.#tracing) {
          this.#output({ atMs: this.#now(), effect: "closeLink", end, reason });
        }
        this.#host.closeLink(this, end);
      },
      dial: (url) => {
        if (this.#tracing) {
          this.#output({ atMs: this.#now(), effect: "dial", url });
        }
        this.dials++;
      },
      syncOverHttp: (url) => {
        if (this.#tracing) {
          this.#output({ atMs: this.#now(), effect: "syncOverHttp", url });
        }
        this.#host.syncOverHttp(this, url);
      },
      datagram: (url, frame) => {
        if (this.#tracing) {
          this.#output({ atMs: this.#now(), effect: "datagram", url, frame });
        }
      },
      persist: (ops) => {
        if (this.#tracing) {
          this.#output({ atMs: this.#now(), effect: "persist", ops });
        }
        this.#commit(ops);
      },
      emit: (event) => this.#host.emit(this, event),
    };
  }

  /** Commits ops to the store in chunks within its operation limit. */
  #commit(ops: readonly PersistOp[]): void {
    const chunk = this.store.limits.maxOps;
    for (let start = 0; start < ops.length; start += chunk) {
      // MemoryStore applies a commit before its promise settles, and it
      // rejects only a chunk over maxOps, which the slicing rules out.
      void this.store.commit(ops.slice(start, start + chunk));
    }
  }

  #record(input: TraceInput): void {
    this.trace?.inputs.push(input);
  }

  #output(output: TraceOutput): void {
    this.trace?.outputs.push(output);
  }

  #returned(call: TraceInput["call"], value: unknown): void {
    if (!this.#tracing || value === undefined) return;
    this.trace?.outputs.push({
      atMs: this.#now(),
      effect: "returned",
      call,
      value,
    });
  }
}

function stateOps(state: NodeState): PersistOp[] {
  const ops: PersistOp[] = [];
  for (const entry of state.entries) ops.push({ type: "entry", entry });
  for (const rumor of state.rumors) ops.push({ type: "rumor", rumor });
  if (state.clock) ops.push({ type: "clock", version: state.clock });
  return ops;
}
