/**
 * One WebSocket link to a peer: hello exchange, framing, keepalive and a
 * bound on unsent data.
 *
 * Both ends send a `hello` with their member record as soon as the socket
 * opens; the link counts as up once the peer's hello arrives. An idle link
 * sends a `ping` every keepalive interval and is closed when nothing has
 * arrived for the link timeout. A peer that does not read fills the
 * socket's send buffer; past the limit the link is closed instead of
 * queueing without bound.
 *
 * @module
 */

import {
  CLOSE_CODES,
  type CloseReason,
  encodeFrame,
  type Frame,
  type InvalidFrameKind,
  type MemberInfo,
  parseFrame,
  PROTOCOL_VERSION,
} from "../protocol/messages.ts";
import type { Counters } from "../protocol/counters.ts";

/** Settings a link reads. */
export interface LinkSettings {
  readonly keepaliveIntervalMs: number;
  readonly linkTimeoutMs: number;
  readonly maxFrameBytes: number;
  /** Bytes a link may have queued and unsent before it is closed. */
  readonly maxSendBufferBytes: number;
}

/** What a link reports to its owner. */
export interface LinkHandlers {
  hello(link: PeerLink, member: MemberInfo): void;
  frame(link: PeerLink, frame: Frame): void;
  invalid(link: PeerLink, kind: InvalidFrameKind, message: string): void;
  closed(link: PeerLink, code: number, reason: string): void;
}

let lastLinkId = 0;

/** A WebSocket link to one peer. */
export class PeerLink {
  /** Unique id of this link within the process. */
  readonly id = ++lastLinkId;
  /** Whether this instance dialled the link. */
  readonly outbound: boolean;
  /** The base URL dialled, for an outbound link. */
  readonly dialedUrl: string | undefined;
  /** The peer's member record, once its hello arrived. */
  peer: MemberInfo | undefined;
  readonly #socket: WebSocket;
  readonly #settings: LinkSettings;
  readonly #handlers: LinkHandlers;
  readonly #counters: Counters;
  readonly #self: () => MemberInfo;
  #timer: ReturnType<typeof setInterval> | undefined;
  #lastReceivedMs = Date.now();
  #lastSentMs = 0;
  #pingSeq = 0;
  #closed = false;
  readonly #socketClosed = Promise.withResolvers<void>();

  constructor(options: {
    socket: WebSocket;
    outbound: boolean;
    dialedUrl?: string;
    settings: LinkSettings;
    handlers: LinkHandlers;
    counters: Counters;
    self: () => MemberInfo;
  }) {
    this.#socket = options.socket;
    this.outbound = options.outbound;
    this.dialedUrl = options.dialedUrl;
    this.#settings = options.settings;
    this.#handlers = options.handlers;
    this.#counters = options.counters;
    this.#self = options.self;

    const socket = this.#socket;
    if (socket.readyState === WebSocket.OPEN) {
      this.#opened();
    } else {
      socket.addEventListener("open", () => this.#opened());
    }
    socket.addEventListener("message", (event) => this.#message(event.data));
    socket.addEventListener("close", (event) => {
      this.#finish(event.code, event.reason);
      this.#socketClosed.resolve();
    });
    socket.addEventListener("error", () => {
      // A "close" event always follows, which does the clean-up.
    });
    this.#timer = setInterval(
      () => this.#keepalive(),
      Math.max(50, Math.min(this.#settings.keepaliveIntervalMs, 1000)),
    );
  }

  /** Settles when the socket has finished closing. */
  get socketClosed(): Promise<void> {
    return this.#socketClosed.promise;
  }

  /** Whether the link is closed or closing. */
  get closed(): boolean {
    return this.#closed;
  }

  /** Sends a frame; returns false if the link is not open. */
  send(frame: Frame): boolean {
    if (this.#closed || this.#socket.readyState !== WebSocket.OPEN) {
      return false;
    }
    if (this.#socket.bufferedAmount > this.#settings.maxSendBufferBytes) {
      this.#counters.inc("links_closed_slow");
      this.close("slowConsumer");
      return false;
    }
    const text = encodeFrame(frame);
    this.#socket.send(text);
    this.#lastSentMs = Date.now();
    this.#counters.inc("frames_out", { type: frame.type });
    this.#counters.inc("bytes_out", {}, text.length);
    if (frame.type === "sync_request" || frame.type === "sync_response") {
      this.#counters.inc(
        "sync_bytes",
        { direction: "out", via: "ws" },
        text.length,
      );
    }
    return true;
  }

  /** Closes the link with one of the protocol's close codes. */
  close(reason: CloseReason): void {
    if (this.#closed) return;
    try {
      this.#socket.close(CLOSE_CODES[reason], reason);
    } catch {
      // The socket may already be closing; the close event still follows.
    }
    this.#finish(CLOSE_CODES[reason], reason);
  }

  #opened(): void {
    this.send({ v: PROTOCOL_VERSION, type: "hello", member: this.#self() });
  }

  #message(data: unknown): void {
    this.#lastReceivedMs = Date.now();
    const size = typeof data === "string"
      ? data.length
      : data instanceof ArrayBuffer
      ? data.byteLength
      : 0;
    this.#counters.inc("bytes_in", {}, size);
    const result = parseFrame(data, this.#settings.maxFrameBytes);
    if (!result.ok) {
      this.#counters.inc("invalid_frames", { kind: result.kind });
      this.#handlers.invalid(this, result.kind, result.message);
      if (!this.peer) this.close("protocolError");
      return;
    }
    const frame = result.frame;
    this.#counters.inc("frames_in", { type: frame.type });
    if (frame.type === "sync_request" || frame.type === "sync_response") {
      this.#counters.inc("sync_bytes", { direction: "in", via: "ws" }, size);
    }
    if (!this.peer) {
      if (frame.type !== "hello") {
        this.#handlers.invalid(
          this,
          "invalid_fields",
          `Expected hello as the first frame, got ${frame.type}`,
        );
        this.close("protocolError");
        return;
      }
      this.peer = frame.member;
      this.#handlers.hello(this, frame.member);
      return;
    }
    if (frame.type === "ping") {
      this.send({ v: PROTOCOL_VERSION, type: "pong", seq: frame.seq });
      return;
    }
    if (frame.type === "pong" || frame.type === "hello") return;
    this.#handlers.frame(this, frame);
  }

  #keepalive(): void {
    const now = Date.now();
    if (now - this.#lastReceivedMs > this.#settings.linkTimeoutMs) {
      this.close("timeout");
      return;
    }
    if (
      this.peer && now - this.#lastSentMs >= this.#settings.keepaliveIntervalMs
    ) {
      this.send({ v: PROTOCOL_VERSION, type: "ping", seq: this.#pingSeq++ });
    }
  }

  #finish(code: number, reason: string): void {
    if (this.#timer !== undefined) {
      clearInterval(this.#timer);
      this.#timer = undefined;
    }
    if (this.#closed) return;
    this.#closed = true;
    this.#handlers.closed(this, code, reason);
  }
}
