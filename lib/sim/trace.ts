/**
 * Records of what one simulated node was given and what it did, and a
 * replay of such a record through a fresh {@link GossipNode}.
 *
 * A replay with the same settings, seed and inputs must produce the same
 * outputs. That is how the tests show that the simulator and a real node
 * make the same decisions for the same message sequence: the simulator
 * adds nothing between the network and the protocol core.
 *
 * @module
 */

import type { CloseReason, Frame, MemberInfo } from "../protocol/messages.ts";
import type { SyncRequest, SyncResponse } from "../protocol/messages.ts";
import {
  type Change,
  GossipNode,
  type HttpSyncDriver,
  type NodeSettings,
  type NodeState,
  type PersistOp,
} from "../protocol/node.ts";
import { seededRandom } from "./random.ts";

/** One call made on a node. */
export type TraceInput =
  | {
    atMs: number;
    call: "linkOpened";
    end: number;
    peer: MemberInfo;
    outbound: boolean;
  }
  | { atMs: number; call: "linkClosed"; end: number }
  | { atMs: number; call: "receive"; end: number; frame: Frame }
  | { atMs: number; call: "tick" }
  | { atMs: number; call: "write"; changes: Change[] }
  | {
    atMs: number;
    call: "handleSyncRequest";
    from: string;
    request: SyncRequest;
  }
  | { atMs: number; call: "httpSyncOpen"; peer: string }
  | { atMs: number; call: "httpSyncNext"; response: SyncResponse }
  | { atMs: number; call: "httpSyncFinish"; error: string | undefined };

/** One thing a node did: an effect, or the value a call returned. */
export type TraceOutput =
  | { atMs: number; effect: "send"; end: number; frame: Frame }
  | { atMs: number; effect: "closeLink"; end: number; reason: CloseReason }
  | { atMs: number; effect: "dial"; url: string }
  | { atMs: number; effect: "syncOverHttp"; url: string }
  | { atMs: number; effect: "datagram"; url: string; frame: Frame }
  | { atMs: number; effect: "persist"; ops: PersistOp[] }
  | {
    atMs: number;
    effect: "returned";
    call: TraceInput["call"];
    value: unknown;
  };

/** Everything needed to replay one node. */
export interface Trace {
  readonly settings: NodeSettings;
  readonly self: MemberInfo;
  /** Seed of the node's random stream. */
  readonly seed: number;
  /** Simulated time at which the node was created. */
  readonly startMs: number;
  readonly state: NodeState | undefined;
  readonly inputs: TraceInput[];
  readonly outputs: TraceOutput[];
}

/**
 * Feeds a trace's inputs to a new {@link GossipNode} built from the same
 * settings, identity, seed and state, and returns what that node did.
 */
export function replayTrace(trace: Trace): TraceOutput[] {
  const outputs: TraceOutput[] = [];
  let nowMs = trace.startMs;
  const node = new GossipNode({
    settings: trace.settings,
    self: trace.self,
    now: () => nowMs,
    random: seededRandom(trace.seed),
    state: trace.state,
    effects: {
      send: (end, frame) =>
        outputs.push({ atMs: nowMs, effect: "send", end, frame }),
      closeLink: (end, reason) =>
        outputs.push({ atMs: nowMs, effect: "closeLink", end, reason }),
      dial: (url) => outputs.push({ atMs: nowMs, effect: "dial", url }),
      syncOverHttp: (url) =>
        outputs.push({ atMs: nowMs, effect: "syncOverHttp", url }),
      datagram: (url, frame) =>
        outputs.push({ atMs: nowMs, effect: "datagram", url, frame }),
      persist: (ops) => outputs.push({ atMs: nowMs, effect: "persist", ops }),
      emit: () => {},
    },
  });
  let driver: HttpSyncDriver | undefined;
  for (const input of trace.inputs) {
    nowMs = input.atMs;
    const value = applyInput(node, input, driver);
    if (input.call === "httpSyncOpen") {
      driver = value as HttpSyncDriver | undefined;
    }
    if (input.call === "httpSyncFinish") driver = undefined;
    if (value !== undefined && input.call !== "httpSyncOpen") {
      outputs.push({
        atMs: nowMs,
        effect: "returned",
        call: input.call,
        value,
      });
    }
  }
  return outputs;
}

function applyInput(
  node: GossipNode,
  input: TraceInput,
  driver: HttpSyncDriver | undefined,
): unknown {
  switch (input.call) {
    case "linkOpened":
      return node.linkOpened(input.end, input.peer, input.outbound);
    case "linkClosed":
      return node.linkClosed(input.end);
    case "receive":
      return node.receive(input.end, input.frame);
    case "tick":
      return node.tick();
    case "write": {
      const { entries } = node.stampWrite(input.changes);
      node.applyLocal(entries);
      return undefined;
    }
    case "handleSyncRequest":
      return node.handleSyncRequest(input.request, input.from);
    case "httpSyncOpen":
      return node.openHttpSync(input.peer);
    case "httpSyncNext":
      return driver?.next(input.response);
    case "httpSyncFinish":
      return driver?.finish(input.error);
  }
}
