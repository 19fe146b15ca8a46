/**
 * A hand-driven peer for security tests: it opens `/gossip` on a test
 * instance, proves a fleet key when given one, sends its hello, and then
 * sends whatever the test wants, valid or not.
 *
 * @module
 */

import type { Frame, MemberInfo } from "../../lib/protocol/messages.ts";
import {
  AUTH_HEADER,
  FleetAuth,
  Keyring,
} from "../../lib/security/fleet_auth.ts";

/** How the instance ended the link. */
export interface CloseInfo {
  readonly code: number;
  readonly reason: string;
}

/** Options of {@link RawPeer.connect}. */
export interface RawPeerOptions {
  /** Comma-separated fleet keys; the first one signs the dial. */
  readonly keys?: string;
  /** Member record sent in the hello; a made-up one by default. */
  readonly member?: MemberInfo;
  /** Whether to complete the auth and hello exchange (default true). */
  readonly handshake?: boolean;
  /** Milliseconds to wait for the handshake. */
  readonly timeoutMs?: number;
  /** Extra request headers of the upgrade, such as the protocol range. */
  readonly headers?: Readonly<Record<string, string>>;
}

/** A WebSocket peer that the test drives frame by frame. */
export class RawPeer {
  readonly socket: WebSocket;
  /** Frames received from the instance, parsed. */
  readonly received: Frame[] = [];
  /** Settles when the socket closes. */
  readonly closed: Promise<CloseInfo>;

  private constructor(socket: WebSocket, closed: Promise<CloseInfo>) {
    this.socket = socket;
    this.closed = closed;
  }

  /**
   * Connects to the instance at `baseUrl`. Rejects when the upgrade fails
   * (such as HTTP 401 without a valid key) or the handshake times out.
   */
  static async connect(
    baseUrl: string,
    options: RawPeerOptions = {},
  ): Promise<RawPeer> {
    const auth = options.keys
      ? new FleetAuth(Keyring.parse(options.keys))
      : undefined;
    const proof = auth?.dialProof("gossip");
    const url = baseUrl.replace(/^http/, "ws") + "/gossip";
    const socket = new WebSocket(url, {
      headers: {
        ...options.headers,
        ...(proof ? { [AUTH_HEADER]: proof.header } : {}),
      },
    });
    const closed = new Promise<CloseInfo>((resolve) => {
      socket.addEventListener(
        "close",
        (event) => resolve({ code: event.code, reason: event.reason }),
      );
    });
    const peer = new RawPeer(socket, closed);
    const member: MemberInfo = options.member ?? {
      id: `raw-${crypto.randomUUID().slice(0, 8)}`,
      region: "test",
      url: null,
      incarnation: 1,
    };
    const ready = Promise.withResolvers<void>();
    socket.addEventListener("error", (event) => {
      ready.reject(new Error((event as ErrorEvent).message));
    });
    socket.addEventListener("close", (event) => {
      ready.reject(new Error(`closed with ${event.code} ${event.reason}`));
    });
    socket.addEventListener("open", () => {
      if (options.handshake === false) ready.resolve();
      else if (!proof) peer.send({ v: 1, type: "hello", member });
    });
    socket.addEventListener("message", (event) => {
      if (typeof event.data !== "string") return;
      const frame = JSON.parse(event.data) as Frame;
      peer.received.push(frame);
      if (options.handshake === false) return;
      if (frame.type === "auth" && proof && auth) {
        const answer = auth.answer(proof.key, proof.nonce, frame.nonce);
        peer.send({ v: 1, type: "auth", ...answer });
        peer.send({ v: 1, type: "hello", member });
      } else if (frame.type === "hello") {
        ready.resolve();
      }
    });
    const timer = setTimeout(
      () => ready.reject(new Error("handshake timed out")),
      options.timeoutMs ?? 5000,
    );
    try {
      await ready.promise;
    } catch (error) {
      if (socket.readyState !== WebSocket.CLOSED) socket.close();
      await closed;
      throw error;
    } finally {
      clearTimeout(timer);
    }
    return peer;
  }

  /** Whether the socket is open. */
  get open(): boolean {
    return this.socket.readyState === WebSocket.OPEN;
  }

  /** Sends a frame as JSON, or raw text or bytes as they are. */
  send(data: Frame | string | Uint8Array<ArrayBuffer>): void {
    if (!this.open) return;
    this.socket.send(
      typeof data === "string" || data instanceof Uint8Array
        ? data
        : JSON.stringify(data),
    );
  }

  /** Closes the socket and waits for the close to finish. */
  async close(): Promise<CloseInfo> {
    if (this.socket.readyState < WebSocket.CLOSING) this.socket.close(1000);
    return await this.closed;
  }
}
