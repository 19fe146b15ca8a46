/**
 * Owns every open {@link PeerLink} of an instance and connects them to the
 * protocol core: dials on request, accepts upgraded sockets from `/gossip`,
 * and reports hellos, frames and closes to the node.
 *
 * @module
 */

import type { Logger } from "../log.ts";
import type { Counters } from "../protocol/counters.ts";
import {
  CLOSE_CODES,
  type CloseReason,
  type Frame,
  type MemberInfo,
} from "../protocol/messages.ts";
import type { GossipNode } from "../protocol/node.ts";
import { type LinkSettings, PeerLink } from "./peer_link.ts";

/** Returns the WebSocket URL of an instance's `/gossip` endpoint. */
export function gossipUrl(baseUrl: string): string {
  const url = new URL(baseUrl);
  url.protocol = url.protocol === "https:" ? "wss:" : "ws:";
  url.pathname = url.pathname.replace(/\/$/, "") + "/gossip";
  return url.href;
}

/** Links of one instance. */
export class LinkManager {
  readonly #links = new Map<number, PeerLink>();
  readonly #settings: LinkSettings;
  readonly #counters: Counters;
  readonly #log: Logger;
  readonly #self: () => MemberInfo;
  readonly #node: () => GossipNode;
  #stopped = false;

  constructor(options: {
    settings: LinkSettings;
    counters: Counters;
    log: Logger;
    self: () => MemberInfo;
    node: () => GossipNode;
  }) {
    this.#settings = options.settings;
    this.#counters = options.counters;
    this.#log = options.log;
    this.#self = options.self;
    this.#node = options.node;
  }

  /** Number of open links, including those still waiting for a hello. */
  get size(): number {
    return this.#links.size;
  }

  /** Dials the instance at a base URL. */
  dial(url: string): void {
    if (this.#stopped) return;
    let socket: WebSocket;
    try {
      socket = new WebSocket(gossipUrl(url));
    } catch (error) {
      this.#log.warn("dial failed", { url, error });
      this.#node().dialFailed(url);
      return;
    }
    this.#track(
      new PeerLink({
        ...this.#linkOptions(socket),
        outbound: true,
        dialedUrl: url,
      }),
    );
  }

  /** Takes a socket accepted on `/gossip`. */
  accept(socket: WebSocket): void {
    if (this.#stopped) {
      socket.addEventListener(
        "open",
        () => socket.close(CLOSE_CODES.goingAway),
      );
      return;
    }
    this.#track(
      new PeerLink({ ...this.#linkOptions(socket), outbound: false }),
    );
  }

  /** Sends a frame on a link, if it is still open. */
  send(link: number, frame: Frame): void {
    this.#links.get(link)?.send(frame);
  }

  /** Closes a link. */
  close(link: number, reason: CloseReason): void {
    this.#links.get(link)?.close(reason);
  }

  /**
   * Sends `bye` on every link, closes them all and waits (at most
   * `timeoutMs`) until their sockets have finished closing.
   */
  async closeAll(timeoutMs = 2000): Promise<void> {
    this.#stopped = true;
    const links = [...this.#links.values()];
    for (const link of links) {
      if (link.peer) link.send({ v: 1, type: "bye" });
      link.close("goingAway");
    }
    let timer: ReturnType<typeof setTimeout> | undefined;
    const timeout = new Promise<void>((resolve) => {
      timer = setTimeout(resolve, timeoutMs);
    });
    await Promise.race([
      Promise.all(links.map((link) => link.socketClosed)),
      timeout,
    ]);
    clearTimeout(timer);
  }

  #track(link: PeerLink): void {
    this.#links.set(link.id, link);
  }

  #linkOptions(socket: WebSocket) {
    return {
      socket,
      settings: this.#settings,
      counters: this.#counters,
      self: this.#self,
      handlers: {
        hello: (link: PeerLink, member: MemberInfo) => {
          const decision = this.#node().linkOpened(
            link.id,
            member,
            link.outbound,
            link.dialedUrl,
          );
          if (decision === "accepted") {
            this.#log.debug("link up", {
              peer: member.id,
              outbound: link.outbound,
            });
          } else {
            link.close(decision);
          }
        },
        frame: (link: PeerLink, frame: Frame) => {
          this.#node().receive(link.id, frame);
        },
        invalid: (link: PeerLink, kind: string, message: string) => {
          this.#log.warn("invalid frame dropped", {
            peer: link.peer?.id,
            kind,
            detail: message,
          });
        },
        closed: (link: PeerLink, code: number, reason: string) => {
          this.#links.delete(link.id);
          const node = this.#node();
          node.linkClosed(link.id);
          const rejected = code === CLOSE_CODES.full ||
            code === CLOSE_CODES.protocolError;
          if (link.dialedUrl && (!link.peer || rejected) && !this.#stopped) {
            node.dialFailed(link.dialedUrl);
          }
          this.#log.debug("link closed", {
            peer: link.peer?.id,
            url: link.dialedUrl,
            code,
            reason,
          });
        },
      },
    };
  }
}
