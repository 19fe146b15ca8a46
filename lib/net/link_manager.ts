/**
 * Owns every open {@link PeerLink} of an instance and connects them to the
 * protocol core: dials on request (with a fleet key proof when the fleet
 * has keys), accepts upgraded sockets from `/gossip`, counts open sockets
 * by remote address, and reports hellos, frames and closes to the node.
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
  MIN_PROTOCOL_VERSION,
} from "../protocol/messages.ts";
import type { GossipNode } from "../protocol/node.ts";
import {
  AUTH_HEADER,
  type FleetAuth,
  type FleetKey,
} from "../security/fleet_auth.ts";
import { AddressCounter } from "../security/rate_limit.ts";
import { formatVersionRange, PROTOCOL_HEADER } from "../protocol/versions.ts";
import { type LinkAuth, type LinkSettings, PeerLink } from "./peer_link.ts";

/** Results of the upgrade checks of a socket accepted on `/gossip`. */
export interface AcceptOptions {
  /** Remote address of the client, for the per-address limit. */
  readonly address: string;
  /** The fleet key the dialler proved, and its nonce; absent in an open fleet. */
  readonly auth?: { readonly key: FleetKey; readonly nonce: string };
  /** Protocol version negotiated with the dialler. */
  readonly version: number;
}

/** Close codes after which a dialled instance is backed off like a failure. */
const REJECTED_CODES: ReadonlySet<number> = new Set([
  CLOSE_CODES.full,
  CLOSE_CODES.protocolError,
  CLOSE_CODES.unauthorized,
  CLOSE_CODES.rateLimited,
  CLOSE_CODES.tooManyInvalidFrames,
]);

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
  readonly #auth: FleetAuth;
  readonly #client: Deno.HttpClient | undefined;
  readonly #prepare: ((frame: Frame) => Promise<void> | undefined) | undefined;
  readonly #addresses = new AddressCounter();
  #stopped = false;

  constructor(options: {
    settings: LinkSettings;
    counters: Counters;
    log: Logger;
    self: () => MemberInfo;
    node: () => GossipNode;
    /** Fleet keys; an empty keyring dials and accepts without proofs. */
    auth: FleetAuth;
    /** HTTP client for dials, such as one that trusts a private CA. */
    client?: Deno.HttpClient;
    /** Asynchronous checks of a frame before the node receives it. */
    prepare?: (frame: Frame) => Promise<void> | undefined;
  }) {
    this.#settings = options.settings;
    this.#counters = options.counters;
    this.#log = options.log;
    this.#self = options.self;
    this.#node = options.node;
    this.#auth = options.auth;
    this.#client = options.client;
    this.#prepare = options.prepare;
  }

  /** Open `/gossip` sockets from a remote address, closing ones included. */
  socketsFrom(address: string): number {
    return this.#addresses.count(address);
  }

  /** Number of open links, including those still waiting for a hello. */
  get size(): number {
    return this.#links.size;
  }

  /** Dials the instance at a base URL. */
  dial(url: string): void {
    if (this.#stopped) return;
    const proof = this.#auth.dialProof("gossip");
    let socket: WebSocket;
    try {
      const versions = formatVersionRange({
        min: MIN_PROTOCOL_VERSION,
        max: this.#settings.maxProtocolVersion,
      });
      socket = new WebSocket(gossipUrl(url), {
        headers: {
          [PROTOCOL_HEADER]: versions,
          ...(proof ? { [AUTH_HEADER]: proof.header } : {}),
        },
        client: this.#client,
      });
    } catch (error) {
      this.#log.warn("dial failed", { url, error });
      this.#node().dialFailed(url);
      return;
    }
    const auth: LinkAuth | undefined = proof && {
      fleetAuth: this.#auth,
      key: proof.key,
      dialNonce: proof.nonce,
    };
    this.#track(
      new PeerLink({
        ...this.#linkOptions(socket),
        outbound: true,
        dialedUrl: url,
        auth,
      }),
    );
  }

  /** Takes a socket accepted on `/gossip`, after its upgrade checks. */
  accept(socket: WebSocket, options: AcceptOptions): void {
    this.#addresses.open(options.address);
    socket.addEventListener(
      "close",
      () => this.#addresses.close(options.address),
    );
    if (this.#stopped) {
      socket.addEventListener(
        "open",
        () => socket.close(CLOSE_CODES.goingAway),
      );
      return;
    }
    const auth: LinkAuth | undefined = options.auth && {
      fleetAuth: this.#auth,
      key: options.auth.key,
      dialNonce: options.auth.nonce,
    };
    this.#track(
      new PeerLink({
        ...this.#linkOptions(socket),
        outbound: false,
        auth,
        version: options.version,
      }),
    );
  }

  /** Returns the protocol version of the open link to a peer, if any. */
  protocolOf(peer: string): number | undefined {
    for (const link of this.#links.values()) {
      if (link.peer?.id === peer && !link.closed) return link.protocol;
    }
    return undefined;
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
      prepare: this.#prepare,
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
        rejected: (link: PeerLink, reason: string, message: string) => {
          this.#log.warn("link closed by policy", {
            peer: link.peer?.id,
            url: link.dialedUrl,
            outbound: link.outbound,
            reason,
            detail: message,
          });
        },
        closed: (link: PeerLink, code: number, reason: string) => {
          this.#links.delete(link.id);
          const node = this.#node();
          node.linkClosed(link.id);
          const rejected = REJECTED_CODES.has(code);
          if (link.dialedUrl && (!link.peer || rejected) && !this.#stopped) {
            node.dialFailed(link.dialedUrl);
          }
          if (
            link.dialedUrl && /status code: 40[13]/.test(link.socketError ?? "")
          ) {
            // The peer turned the upgrade away: it has other fleet keys.
            this.#log.warn(
              "dial rejected: the peer did not accept this instance's fleet key",
              {
                url: link.dialedUrl,
                error: link.socketError,
              },
            );
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
