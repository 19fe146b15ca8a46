/**
 * One WebSocket link to a peer: fleet authentication, hello exchange,
 * framing, limits and keepalive.
 *
 * In a fleet with keys, the acceptor's first frame is an `auth` challenge
 * that proves it holds the key the dialler named, and the dialler's first
 * frame answers it (see fleet_auth.ts). Any other frame first closes the
 * link with code 4007. Then both ends send a `hello` with their member
 * record; the link counts as up once the peer's hello arrives. Without
 * keys the hellos are sent as soon as the socket opens.
 *
 * Limits, each closing the link with its own code:
 *
 * - more than `maxFramesPerSecond` frames in a second (4008);
 * - more than `maxInvalidFrames` invalid frames in a minute (4009); frames
 *   of an unknown type or protocol version are counted but not held
 *   against the peer, so that a newer instance can talk to an older one;
 * - any invalid frame before the peer's hello (4003);
 * - more than `maxSendBufferBytes` queued and unsent, because the peer
 *   reads too slowly or not at all (4005);
 * - nothing received for `linkTimeoutMs` (4004).
 *
 * A link writes every frame in its protocol version (see
 * protocol/versions.ts): the one negotiated at the upgrade for an accepted
 * link, and for a dialled link the version of the peer's hello, or the
 * oldest version until that hello arrives.
 *
 * Outgoing rumor frames are held for `rumorBatchMs` (by default until the
 * current task ends) and merged into as few frames as the limits allow (see
 * rumor_batch.ts). Any other frame sends the held rumors first, so frames
 * leave in the order they were sent.
 *
 * Frames that need asynchronous work first (verifying signatures) are
 * delivered in their order of arrival; at most {@link MAX_QUEUED_FRAMES}
 * wait at once.
 *
 * @module
 */

import type { Counters } from "../protocol/counters.ts";
import {
  CLOSE_CODES,
  type CloseReason,
  encodeFrame,
  type Frame,
  type FrameOf,
  type InvalidFrameKind,
  type MemberInfo,
  MIN_PROTOCOL_VERSION,
  parseFrame,
  PROTOCOL_VERSION,
} from "../protocol/messages.ts";
import type { FleetAuth, FleetKey } from "../security/fleet_auth.ts";
import { TokenBucket } from "../security/rate_limit.ts";
import { mergeRumorFrames } from "./rumor_batch.ts";

/** Frames of one link that may wait for asynchronous checks at once. */
export const MAX_QUEUED_FRAMES = 256;

/** Settings a link reads. */
export interface LinkSettings {
  readonly keepaliveIntervalMs: number;
  readonly linkTimeoutMs: number;
  readonly maxFrameBytes: number;
  readonly maxEntriesPerFrame: number;
  readonly maxFramesPerSecond: number;
  readonly maxInvalidFrames: number;
  /** Bytes a link may have queued and unsent before it is closed. */
  readonly maxSendBufferBytes: number;
  /** Newest protocol version accepted from the peer. */
  readonly maxProtocolVersion: number;
  /**
   * Milliseconds outgoing rumor frames wait to be merged; 0 (the default)
   * merges the frames queued by one task and adds no delay.
   */
  readonly rumorBatchMs?: number;
}

/** Callbacks through which a link reports to its owner. */
export interface LinkHandlers {
  hello(link: PeerLink, member: MemberInfo): void;
  frame(link: PeerLink, frame: Frame): void;
  invalid(link: PeerLink, kind: InvalidFrameKind, message: string): void;
  /** The link is closed because the peer broke a limit or failed to authenticate. */
  rejected(link: PeerLink, reason: CloseReason, message: string): void;
  closed(link: PeerLink, code: number, reason: string): void;
}

/** The fleet key of a link, and the nonce of the dialler's proof. */
export interface LinkAuth {
  readonly fleetAuth: FleetAuth;
  readonly key: FleetKey;
  readonly dialNonce: string;
}

let lastLinkId = 0;

/** Kinds of invalid frames that do not count towards closing a link. */
const TOLERATED_KINDS: ReadonlySet<InvalidFrameKind> = new Set([
  "unknown_type",
  "unsupported_version",
]);

/** Returns the number of entries a frame carries. */
export function entryCount(frame: Frame): number {
  switch (frame.type) {
    case "rumor":
      return frame.entries.length;
    case "sync_request":
      return frame.body.push.length;
    case "sync_response":
      return frame.body.entries.length;
    default:
      return 0;
  }
}

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
  /** Message of the socket's error event, such as a failed handshake. */
  socketError: string | undefined;
  readonly #socket: WebSocket;
  readonly #settings: LinkSettings;
  readonly #handlers: LinkHandlers;
  readonly #counters: Counters;
  readonly #self: () => MemberInfo;
  readonly #auth: LinkAuth | undefined;
  readonly #prepare: ((frame: Frame) => Promise<void> | undefined) | undefined;
  readonly #frameBudget: TokenBucket;
  readonly #invalidBudget: TokenBucket;
  #authenticated: boolean;
  #version: number;
  /** The acceptor's challenge nonce, which the dialler must answer. */
  #challengeNonce: string | undefined;
  #timer: ReturnType<typeof setInterval> | undefined;
  #lastReceivedMs = Date.now();
  #lastSentMs = 0;
  #pingSeq = 0;
  #closed = false;
  #queue: Promise<void> = Promise.resolve();
  #queued = 0;
  /** Rumor frames held for merging, in the order they were sent. */
  #heldRumors: FrameOf<"rumor">[] = [];
  #rumorTimer: ReturnType<typeof setTimeout> | undefined;
  readonly #socketClosed = Promise.withResolvers<void>();

  constructor(options: {
    socket: WebSocket;
    outbound: boolean;
    dialedUrl?: string;
    settings: LinkSettings;
    handlers: LinkHandlers;
    counters: Counters;
    self: () => MemberInfo;
    /** The fleet key and nonce; left out in an open fleet. */
    auth?: LinkAuth;
    /** Starts asynchronous checks of a frame before it is delivered. */
    prepare?: (frame: Frame) => Promise<void> | undefined;
    /** Protocol version negotiated for an accepted link. */
    version?: number;
  }) {
    this.#socket = options.socket;
    this.outbound = options.outbound;
    this.dialedUrl = options.dialedUrl;
    this.#settings = options.settings;
    this.#handlers = options.handlers;
    this.#counters = options.counters;
    this.#self = options.self;
    this.#auth = options.auth;
    this.#prepare = options.prepare;
    this.#authenticated = options.auth === undefined;
    this.#version = options.version ?? MIN_PROTOCOL_VERSION;
    const { maxFramesPerSecond, maxInvalidFrames } = this.#settings;
    this.#frameBudget = new TokenBucket(maxFramesPerSecond, maxFramesPerSecond);
    this.#invalidBudget = new TokenBucket(
      maxInvalidFrames / 60,
      maxInvalidFrames,
    );

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
    socket.addEventListener("error", (event) => {
      // A "close" event always follows, which does the clean-up.
      this.socketError = (event as ErrorEvent).message;
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

  /** Protocol version of the frames this link writes. */
  get protocol(): number {
    return this.#version;
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
    if (frame.type === "rumor") {
      this.#holdRumor(frame);
      return true;
    }
    this.#sendHeldRumors();
    return this.#write(frame);
  }

  #holdRumor(frame: FrameOf<"rumor">): void {
    this.#heldRumors.push(frame);
    if (this.#heldRumors.length > 1) return;
    const delayMs = this.#settings.rumorBatchMs ?? 0;
    if (delayMs > 0) {
      this.#rumorTimer = setTimeout(() => this.#sendHeldRumors(), delayMs);
    } else {
      queueMicrotask(() => this.#sendHeldRumors());
    }
  }

  #sendHeldRumors(): void {
    if (this.#heldRumors.length === 0) return;
    clearTimeout(this.#rumorTimer);
    this.#rumorTimer = undefined;
    const held = this.#heldRumors;
    this.#heldRumors = [];
    if (this.#closed || this.#socket.readyState !== WebSocket.OPEN) return;
    const frames = mergeRumorFrames(held, {
      maxEntriesPerFrame: this.#settings.maxEntriesPerFrame,
      maxEntryBytes: this.#settings.maxFrameBytes / 2,
    });
    if (frames.length < held.length) {
      this.#counters.inc(
        "rumor_frames_merged",
        {},
        held.length - frames.length,
      );
    }
    for (const frame of frames) this.#write(frame);
  }

  #write(frame: Frame): boolean {
    if (this.#sendBufferFull()) return false;
    const text = encodeFrame(frame, this.#version);
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
    const auth = this.#auth;
    if (!auth) {
      this.#sendHello();
    } else if (!this.outbound) {
      const challenge = auth.fleetAuth.challenge(auth.key, auth.dialNonce);
      this.#challengeNonce = challenge.nonce;
      this.send({ v: PROTOCOL_VERSION, type: "auth", ...challenge });
    }
    // A dialler with a key waits for the acceptor's challenge.
  }

  #sendHello(): void {
    this.send({ v: PROTOCOL_VERSION, type: "hello", member: this.#self() });
  }

  /** Closes the link for a broken limit or failed authentication. */
  #reject(reason: CloseReason, message: string): void {
    if (this.#closed) return;
    this.#counters.inc("links_rejected", { reason });
    this.#handlers.rejected(this, reason, message);
    this.close(reason);
  }

  #message(data: unknown): void {
    if (this.#closed) return;
    try {
      this.#receive(data);
    } catch (error) {
      // A bug must not take the process down: drop the link instead.
      this.#counters.inc("frame_errors");
      this.#reject(
        "protocolError",
        `Handling a frame failed: ${(error as Error).message}`,
      );
    }
  }

  #receive(data: unknown): void {
    this.#lastReceivedMs = Date.now();
    const size = typeof data === "string"
      ? data.length
      : data instanceof ArrayBuffer
      ? data.byteLength
      : data instanceof Blob
      ? data.size
      : 0;
    this.#counters.inc("bytes_in", {}, size);
    if (!this.#frameBudget.take()) {
      this.#reject(
        "rateLimited",
        `Peer sent more than ${this.#settings.maxFramesPerSecond} frames per second`,
      );
      return;
    }

    const result = parseFrame(
      data,
      this.#settings.maxFrameBytes,
      this.#settings.maxProtocolVersion,
    );
    if (!result.ok) {
      this.#invalid(result.kind, result.message);
      return;
    }
    const frame = result.frame;
    const entries = entryCount(frame);
    if (entries > this.#settings.maxEntriesPerFrame) {
      this.#invalid(
        "too_many_entries",
        `Frame ${frame.type} carries ${entries} entries, more than the maximum of ${this.#settings.maxEntriesPerFrame}`,
      );
      return;
    }
    this.#counters.inc("frames_in", { type: frame.type });
    if (frame.type === "sync_request" || frame.type === "sync_response") {
      this.#counters.inc("sync_bytes", { direction: "in", via: "ws" }, size);
    }

    if (!this.#authenticated) {
      this.#authenticate(frame);
      return;
    }
    if (frame.type === "auth") return;
    if (!this.peer) {
      if (frame.type !== "hello") {
        this.#invalid(
          "invalid_fields",
          `Expected hello as the first frame, got ${frame.type}`,
        );
        return;
      }
      this.peer = frame.member;
      // The acceptor wrote its hello in the version it picked for the link.
      if (this.outbound) this.#version = frame.v;
      this.#handlers.hello(this, frame.member);
      return;
    }
    if (frame.type === "ping") {
      this.send({ v: PROTOCOL_VERSION, type: "pong", seq: frame.seq });
      return;
    }
    if (frame.type === "pong" || frame.type === "hello") return;
    this.#deliver(frame);
  }

  /** Counts an invalid frame and closes the link when the invalid-frame policy requires it. */
  #invalid(kind: InvalidFrameKind, message: string): void {
    this.#counters.inc("invalid_frames", { kind });
    this.#handlers.invalid(this, kind, message);
    if (!this.peer) {
      this.#reject("protocolError", message);
    } else if (!TOLERATED_KINDS.has(kind) && !this.#invalidBudget.take()) {
      this.#reject(
        "tooManyInvalidFrames",
        `Peer sent more than ${this.#settings.maxInvalidFrames} invalid frames in a minute`,
      );
    }
  }

  /** Checks the first frame of the peer in a fleet with keys. */
  #authenticate(frame: Frame): void {
    const auth = this.#auth!;
    if (frame.type !== "auth") {
      this.#counters.inc("auth_failures", {
        endpoint: "link",
        reason: "missing",
      });
      this.#reject(
        "unauthorized",
        `Expected an auth frame from the peer, got ${frame.type}`,
      );
      return;
    }
    const valid = this.outbound
      ? auth.fleetAuth.checkChallenge(auth.key, auth.dialNonce, frame)
      : auth.fleetAuth.checkAnswer(
        auth.key,
        auth.dialNonce,
        this.#challengeNonce!,
        frame,
      );
    if (!valid) {
      this.#counters.inc("auth_failures", {
        endpoint: "link",
        reason: "bad_mac",
      });
      this.#reject("unauthorized", "The peer's auth frame is invalid");
      return;
    }
    this.#authenticated = true;
    if (this.outbound) {
      const answer = auth.fleetAuth.answer(
        auth.key,
        auth.dialNonce,
        (frame as FrameOf<"auth">).nonce,
      );
      this.send({ v: PROTOCOL_VERSION, type: "auth", ...answer });
    }
    this.#sendHello();
  }

  /** Hands a frame to the owner, after its asynchronous checks if any. */
  #deliver(frame: Frame): void {
    const ready = this.#prepare?.(frame);
    if (!ready && this.#queued === 0) {
      this.#handlers.frame(this, frame);
      return;
    }
    if (this.#queued >= MAX_QUEUED_FRAMES) {
      this.#reject(
        "rateLimited",
        `More than ${MAX_QUEUED_FRAMES} frames of the peer are waiting for checks`,
      );
      return;
    }
    this.#queued++;
    this.#queue = this.#queue
      .then(() => ready)
      .then(() => {
        this.#queued--;
        if (!this.#closed) this.#handlers.frame(this, frame);
      })
      .catch((error) => {
        this.#counters.inc("frame_errors");
        this.#reject(
          "protocolError",
          `Handling a frame failed: ${(error as Error).message}`,
        );
      });
  }

  /** Closes the link when its unsent data is over the limit. */
  #sendBufferFull(): boolean {
    if (this.#socket.bufferedAmount <= this.#settings.maxSendBufferBytes) {
      return false;
    }
    this.#counters.inc("links_closed_slow");
    this.#reject(
      "slowConsumer",
      `Peer reads too slowly: ${this.#socket.bufferedAmount} bytes unsent, more than the maximum of ${this.#settings.maxSendBufferBytes}`,
    );
    return true;
  }

  #keepalive(): void {
    const now = Date.now();
    if (now - this.#lastReceivedMs > this.#settings.linkTimeoutMs) {
      this.close("timeout");
      return;
    }
    if (this.#socket.readyState === WebSocket.OPEN && this.#sendBufferFull()) {
      return;
    }
    if (
      this.peer && now - this.#lastSentMs >= this.#settings.keepaliveIntervalMs
    ) {
      this.send({ v: PROTOCOL_VERSION, type: "ping", seq: this.#pingSeq++ });
    }
  }

  #finish(code: number, reason: string): void {
    clearTimeout(this.#rumorTimer);
    this.#rumorTimer = undefined;
    this.#heldRumors = [];
    if (this.#timer !== undefined) {
      clearInterval(this.#timer);
      this.#timer = undefined;
    }
    if (this.#closed) return;
    this.#closed = true;
    this.#handlers.closed(this, code, reason);
  }
}
