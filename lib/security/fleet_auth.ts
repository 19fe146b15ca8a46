/**
 * Fleet authentication: proof of a shared fleet key on every peer link and
 * every anti-entropy request, without the key ever crossing the wire.
 *
 * A keyring holds one or more keys, as memberlist's keyring does, so that a
 * key can be rotated without downtime: the first key is used to dial, and
 * every key is accepted. Each key has a short id, a prefix of a SHA-256
 * hash of the key, that the dialler names so that the acceptor need not try
 * every key.
 *
 * A dial proof travels in the `Grapevine-Auth` request header:
 * `kid=ID, ts=MS, nonce=N, mac=HMAC-SHA256(key, purpose, ts, nonce, body)`.
 * The acceptor rejects proofs whose timestamp is more than
 * {@link AUTH_MAX_SKEW_MS} away from its clock and nonces it has already
 * seen within that window, so a captured header cannot be replayed to it.
 *
 * A WebSocket link then runs a challenge in both directions before the
 * hellos: the acceptor's first frame proves that it holds the key and
 * carries a fresh nonce, and the dialler's first frame answers that nonce.
 * A replayed header therefore opens no link, even on another instance. An
 * HTTP anti-entropy response carries a proof over the request's nonce and
 * the response body, so the dialler knows who answered.
 *
 * @module
 */

import { Buffer } from "node:buffer";
import {
  createHash,
  createHmac,
  randomBytes,
  timingSafeEqual,
} from "node:crypto";

/** Header that carries dial and response proofs. */
export const AUTH_HEADER = "grapevine-auth";

/** Largest difference between a proof's timestamp and local time. */
export const AUTH_MAX_SKEW_MS = 120_000;

/** Shortest fleet key accepted, in bytes of UTF-8. */
export const MIN_KEY_BYTES = 16;

/** Nonces remembered at most; past it the oldest are forgotten. */
const MAX_NONCES = 100_000;

/** Purpose of a dial proof; it is part of the signed text. */
export type AuthPurpose = "gossip" | "sync" | "probe";

/** Reason a proof was rejected, used as a metric label and in operator logs. */
export type AuthFailure =
  | "missing"
  | "malformed"
  | "unknown_key"
  | "bad_mac"
  | "stale"
  | "replayed";

/** One fleet key. */
export interface FleetKey {
  /** Short public id: 8 hex digits of a SHA-256 hash of the key. */
  readonly id: string;
  readonly secret: Buffer;
}

/** Raised when the fleet keys cannot be used; the message never has a key. */
export class KeyringError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "KeyringError";
  }
}

/** Returns the id of a fleet key. */
export function keyId(secret: Uint8Array): string {
  return createHash("sha256")
    .update("grapevine fleet key id\n")
    .update(secret)
    .digest("hex")
    .slice(0, 8);
}

/** Returns a new random nonce: 16 bytes in base64url. */
export function newNonce(): string {
  return randomBytes(16).toString("base64url");
}

/** Returns the hex SHA-256 of a text, used to bind a proof to a body. */
export function bodyHash(text: string): string {
  return createHash("sha256").update(text).digest("hex");
}

/**
 * The fleet keys of an instance.
 *
 * @example
 * ```ts
 * import { Keyring } from "./fleet_auth.ts";
 * const keyring = Keyring.parse("new-key-0123456789abcdef,old-key-0123456789abcdef");
 * keyring.primary?.id.length; // 8
 * keyring.size; // 2
 * ```
 */
export class Keyring {
  readonly #keys: FleetKey[];

  private constructor(keys: FleetKey[]) {
    this.#keys = keys;
  }

  /**
   * Parses comma-separated keys; an empty text gives an empty keyring (an
   * open fleet).
   *
   * @throws {KeyringError} for a key shorter than {@link MIN_KEY_BYTES} or
   * a repeated key; the message names the key's position, never the key.
   */
  static parse(text: string, source = "the fleet keys"): Keyring {
    const keys: FleetKey[] = [];
    const items = text.split(",").map((item) => item.trim());
    for (const [index, item] of items.entries()) {
      if (item === "") continue;
      const secret = Buffer.from(item, "utf8");
      if (secret.byteLength < MIN_KEY_BYTES) {
        throw new KeyringError(
          `Key ${
            index + 1
          } of ${source} is shorter than ${MIN_KEY_BYTES} bytes; generate one with: main.ts keygen fleet`,
        );
      }
      const id = keyId(secret);
      if (keys.some((key) => key.id === id)) {
        throw new KeyringError(
          `Key ${
            index + 1
          } of ${source} repeats an earlier key; list each key once`,
        );
      }
      keys.push({ id, secret });
    }
    return new Keyring(keys);
  }

  /** Whether any key is set; without keys the fleet is open. */
  get enabled(): boolean {
    return this.#keys.length > 0;
  }

  /** Number of keys. */
  get size(): number {
    return this.#keys.length;
  }

  /** The key used to dial: the first one. */
  get primary(): FleetKey | undefined {
    return this.#keys[0];
  }

  /** Ids of every key, in order; safe to log. */
  get ids(): string[] {
    return this.#keys.map((key) => key.id);
  }

  /** Returns the key with an id. */
  find(id: string): FleetKey | undefined {
    return this.#keys.find((key) => key.id === id);
  }
}

/** A dial proof ready to send, with what is needed to check the answer. */
export interface DialProof {
  /** Value of the `Grapevine-Auth` header. */
  readonly header: string;
  readonly key: FleetKey;
  readonly nonce: string;
}

/** Outcome of checking a dial proof. */
export type DialCheck =
  | { ok: true; key: FleetKey; nonce: string }
  | { ok: false; reason: AuthFailure };

/** Fields of the first frame of each side on an authenticated link. */
export interface AuthFrameFields {
  readonly kid: string;
  readonly nonce: string;
  readonly mac: string;
}

function mac(key: FleetKey, ...parts: string[]): string {
  const hmac = createHmac("sha256", key.secret);
  hmac.update(parts.join("\n"));
  return hmac.digest("base64url");
}

/** Compares two base64url MACs in constant time. */
function macEquals(expected: string, actual: string): boolean {
  const a = Buffer.from(expected, "base64url");
  const b = Buffer.from(actual, "base64url");
  return a.byteLength === b.byteLength && timingSafeEqual(a, b);
}

const HEADER_PATTERN =
  /^kid=([0-9a-f]{8}), ts=(\d{1,15}), nonce=([A-Za-z0-9_-]{16,64}), mac=([A-Za-z0-9_-]{43})$/;

const RESPONSE_PATTERN = /^kid=([0-9a-f]{8}), mac=([A-Za-z0-9_-]{43})$/;

/**
 * Creates and checks proofs with a keyring. It keeps the nonces of accepted
 * dial proofs for {@link AUTH_MAX_SKEW_MS}, to reject replays.
 */
export class FleetAuth {
  readonly keyring: Keyring;
  readonly #now: () => number;
  /** Nonce → expiry time; insertion order is expiry order. */
  readonly #nonces = new Map<string, number>();

  constructor(keyring: Keyring, now: () => number = Date.now) {
    this.keyring = keyring;
    this.#now = now;
  }

  /** Whether proofs are required. */
  get enabled(): boolean {
    return this.keyring.enabled;
  }

  /**
   * Returns a dial proof for a request to a peer, signed with the primary
   * key, or `undefined` in an open fleet. `body` is the request body, for
   * anti-entropy requests.
   */
  dialProof(purpose: AuthPurpose, body = ""): DialProof | undefined {
    const key = this.keyring.primary;
    if (!key) return undefined;
    const ts = String(this.#now());
    const nonce = newNonce();
    const signature = mac(key, "dial", purpose, ts, nonce, bodyHash(body));
    return {
      header: `kid=${key.id}, ts=${ts}, nonce=${nonce}, mac=${signature}`,
      key,
      nonce,
    };
  }

  /**
   * Checks a dial proof from a request header. A proof that passes is
   * remembered, so the same header is rejected as `replayed` next time.
   */
  checkDial(
    header: string | null | undefined,
    purpose: AuthPurpose,
    body = "",
  ): DialCheck {
    if (!header) return { ok: false, reason: "missing" };
    const match = HEADER_PATTERN.exec(header.trim());
    if (!match) return { ok: false, reason: "malformed" };
    const [, kid, ts, nonce, given] = match as unknown as string[];
    const key = this.keyring.find(kid!);
    if (!key) return { ok: false, reason: "unknown_key" };
    const expected = mac(key, "dial", purpose, ts!, nonce!, bodyHash(body));
    if (!macEquals(expected, given!)) return { ok: false, reason: "bad_mac" };
    const now = this.#now();
    if (Math.abs(now - Number(ts)) > AUTH_MAX_SKEW_MS) {
      return { ok: false, reason: "stale" };
    }
    this.#forgetExpired(now);
    if (this.#nonces.has(nonce!)) return { ok: false, reason: "replayed" };
    this.#nonces.set(nonce!, now + 2 * AUTH_MAX_SKEW_MS);
    if (this.#nonces.size > MAX_NONCES) {
      this.#nonces.delete(this.#nonces.keys().next().value!);
    }
    return { ok: true, key, nonce: nonce! };
  }

  /**
   * Returns the acceptor's first frame: proof that it holds the key the
   * dialler named, over the dialler's nonce, and a new nonce to answer.
   */
  challenge(key: FleetKey, dialNonce: string): AuthFrameFields {
    const nonce = newNonce();
    return { kid: key.id, nonce, mac: mac(key, "accept", dialNonce, nonce) };
  }

  /** Checks the acceptor's first frame on the dialler's side. */
  checkChallenge(
    key: FleetKey,
    dialNonce: string,
    frame: AuthFrameFields,
  ): boolean {
    if (frame.kid !== key.id) return false;
    return macEquals(mac(key, "accept", dialNonce, frame.nonce), frame.mac);
  }

  /** Returns the dialler's answer to the acceptor's challenge. */
  answer(
    key: FleetKey,
    dialNonce: string,
    challengeNonce: string,
  ): AuthFrameFields {
    return {
      kid: key.id,
      nonce: dialNonce,
      mac: mac(key, "answer", challengeNonce, dialNonce),
    };
  }

  /** Checks the dialler's answer on the acceptor's side. */
  checkAnswer(
    key: FleetKey,
    dialNonce: string,
    challengeNonce: string,
    frame: AuthFrameFields,
  ): boolean {
    if (frame.kid !== key.id || frame.nonce !== dialNonce) return false;
    return macEquals(
      mac(key, "answer", challengeNonce, dialNonce),
      frame.mac,
    );
  }

  /** Returns the proof header of an anti-entropy response. */
  responseHeader(key: FleetKey, dialNonce: string, body: string): string {
    const signature = mac(key, "response", dialNonce, bodyHash(body));
    return `kid=${key.id}, mac=${signature}`;
  }

  /** Checks the proof header of an anti-entropy response. */
  checkResponse(
    header: string | null,
    proof: DialProof,
    body: string,
  ): boolean {
    const match = header ? RESPONSE_PATTERN.exec(header.trim()) : null;
    if (!match || match[1] !== proof.key.id) return false;
    const expected = mac(proof.key, "response", proof.nonce, bodyHash(body));
    return macEquals(expected, match[2]!);
  }

  #forgetExpired(now: number): void {
    for (const [nonce, expiresMs] of this.#nonces) {
      if (expiresMs > now) break;
      this.#nonces.delete(nonce);
    }
  }
}
