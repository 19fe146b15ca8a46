/**
 * Anti-entropy over HTTP between simulated nodes. A node without links
 * requests an HTTP session from its adapter (`syncOverHttp`); here each request
 * and each response is one event, delayed and possibly lost like a frame.
 *
 * @module
 */

import type { SyncRequest, SyncResponse } from "../protocol/messages.ts";
import type { HttpSyncDriver } from "../protocol/node.ts";
import type { SimNetwork } from "./network.ts";
import type { SimNode } from "./sim_node.ts";

/** One leg of an HTTP anti-entropy session, by node index. */
export type HttpEvent =
  | {
    kind: "http_request";
    from: number;
    to: number;
    request: SyncRequest;
    driver: HttpSyncDriver;
  }
  | {
    kind: "http_response";
    from: number;
    to: number;
    response: SyncResponse | undefined;
    driver: HttpSyncDriver;
  };

/** The parts of the simulator that HTTP sessions use. */
export interface HttpSyncContext {
  nodes(): readonly SimNode[];
  network(): SimNetwork;
  /** Queues an event after one network delay. */
  schedule(event: HttpEvent): void;
}

/** Returns the node index in a simulated node URL, such as `http://n7.sim`. */
export function indexOfUrl(url: string): number | undefined {
  const match = /^http:\/\/n(\d+)\.sim$/.exec(url);
  return match ? Number(match[1]) : undefined;
}

/** Opens a session from `from` to the node at `url` and sends its first request. */
export function startHttpSync(
  context: HttpSyncContext,
  from: SimNode,
  url: string,
): void {
  const nodes = context.nodes();
  const to = indexOfUrl(url);
  if (to === undefined || to >= nodes.length) return;
  const driver = from.openHttpSync(nodes[to]!.info.id);
  if (!driver) return;
  context.schedule({
    kind: "http_request",
    from: from.index,
    to,
    request: driver.first(),
    driver,
  });
}

/** Handles a request at the responder or a response at the initiator. */
export function handleHttpEvent(
  context: HttpSyncContext,
  event: HttpEvent,
): void {
  const nodes = context.nodes();
  const network = context.network();
  if (event.kind === "http_request") {
    const target = nodes[event.to]!;
    const reachable = target.online &&
      network.reachable(event.from, event.to) &&
      !network.lost();
    const response = reachable
      ? target.handleSyncRequest(event.request, nodes[event.from]!.info.id)
      : undefined;
    context.schedule({ ...event, kind: "http_response", response });
    return;
  }
  const node = nodes[event.from]!;
  // A node stopped in the meantime lost its session with its GossipNode.
  if (!node.online) return;
  if (!event.response) {
    event.driver.finish("HTTP sync request failed: peer unreachable");
    return;
  }
  const next = event.driver.next(event.response);
  if (!next) {
    event.driver.finish();
    return;
  }
  context.schedule({
    kind: "http_request",
    from: event.from,
    to: event.to,
    request: next,
    driver: event.driver,
  });
}
