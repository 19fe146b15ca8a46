/**
 * Signed updates: a publisher signs each update with an Ed25519 key
 * (WebCrypto), and instances that know the publisher's public key merge
 * only updates that carry a valid signature. One compromised instance can
 * then no longer forge config for the rest of the fleet.
 *
 * The signature covers the key, the whole version and the value (or the
 * tombstone of a delete), so a signed update cannot be moved to another
 * key, replayed with a newer version or turned into a delete. The
 * publisher picks the version itself, from its own hybrid logical clock,
 * with the node id `pub-ID`, where ID is a prefix of a hash of its public
 * key.
 *
 * WebCrypto verifies asynchronously while the protocol core is
 * synchronous. So the adapters verify the entries of a frame or request
 * first ({@link EntryVerifier.admit}), and the core asks
 * {@link EntryVerifier.check} for each entry as it merges it. The check
 * recognises verified entries by object identity, so an entry the adapter
 * did not verify is never merged.
 *
 * @module
 */

import { Buffer } from "node:buffer";
import { createHash } from "node:crypto";
import { formatVersion, HybridClock } from "../protocol/clock.ts";
import type { Entry } from "../protocol/entry.ts";
import type { Frame } from "../protocol/messages.ts";

const ED25519 = { name: "Ed25519" } as const;
const encoder = new TextEncoder();

/** Verified entries remembered, so duplicates are not verified again. */
const CACHE_SIZE = 10_000;

/** Raised when a publisher key cannot be read; never contains the key. */
export class PublisherKeyError extends Error {
  constructor(message: string, options?: ErrorOptions) {
    super(message);
    this.name = "PublisherKeyError";
    if (options?.cause) this.cause = options.cause;
  }
}

/** Returns the bytes a publisher signs for an entry. */
export function signedBytes(
  entry: Pick<Entry, "key" | "value" | "version">,
): Uint8Array<ArrayBuffer> {
  return encoder.encode(
    "grapevine-entry-v1\n" +
      JSON.stringify([entry.key, formatVersion(entry.version), entry.value]),
  );
}

/** Returns the node id that a publisher's versions carry. */
export function publisherNodeId(publicKey: Uint8Array): string {
  return "pub-" +
    createHash("sha256").update(publicKey).digest("hex").slice(0, 8);
}

/** Returns the entries that a frame carries, which need verifying. */
export function frameEntries(frame: Frame): readonly Entry[] {
  switch (frame.type) {
    case "rumor":
      return frame.entries;
    case "sync_request":
      return frame.body.push;
    case "sync_response":
      return frame.body.entries;
    default:
      return [];
  }
}

/** A new publisher key pair, both halves in base64url. */
export interface PublisherKeyPair {
  /** PKCS #8 private key; keep it secret. */
  readonly privateKey: string;
  /** Raw 32-byte public key, for the `publisherKeys` setting. */
  readonly publicKey: string;
}

/** Generates a new Ed25519 publisher key pair. */
export async function generatePublisherKey(): Promise<PublisherKeyPair> {
  const pair = await crypto.subtle.generateKey(ED25519, true, [
    "sign",
    "verify",
  ]) as CryptoKeyPair;
  const privateKey = await crypto.subtle.exportKey("pkcs8", pair.privateKey);
  const publicKey = await crypto.subtle.exportKey("raw", pair.publicKey);
  return {
    privateKey: Buffer.from(privateKey).toString("base64url"),
    publicKey: Buffer.from(publicKey).toString("base64url"),
  };
}

/**
 * Signs updates with a publisher's private key and stamps them with the
 * publisher's own versions.
 *
 * @example
 * ```ts
 * import { generatePublisherKey, PublisherSigner } from "./signatures.ts";
 * const pair = await generatePublisherKey();
 * const signer = await PublisherSigner.fromPrivateKey(pair.privateKey);
 * const entry = await signer.sign("features.x", "true");
 * entry.version[2] === signer.nodeId; // true
 * ```
 */
export class PublisherSigner {
  /** The public key in base64url, as the `publisherKeys` setting lists it. */
  readonly publicKey: string;
  /** Node id of the versions this signer issues. */
  readonly nodeId: string;
  readonly #privateKey: CryptoKey;
  readonly #clock: HybridClock;

  private constructor(
    privateKey: CryptoKey,
    publicKey: Uint8Array,
    now: () => number,
  ) {
    this.#privateKey = privateKey;
    this.publicKey = Buffer.from(publicKey).toString("base64url");
    this.nodeId = publisherNodeId(publicKey);
    this.#clock = new HybridClock(this.nodeId, now);
  }

  /**
   * Reads a PKCS #8 private key in base64url or base64, as `keygen
   * publisher` writes it.
   *
   * @throws {PublisherKeyError} when the text is not an Ed25519 private key.
   */
  static async fromPrivateKey(
    text: string,
    now: () => number = Date.now,
  ): Promise<PublisherSigner> {
    const bytes = Buffer.from(text.trim(), "base64url");
    try {
      const privateKey = await crypto.subtle.importKey(
        "pkcs8",
        bytes,
        ED25519,
        true,
        ["sign"],
      );
      // The public key is the JWK's "x"; WebCrypto has no direct export.
      const jwk = await crypto.subtle.exportKey("jwk", privateKey);
      const publicKey = Buffer.from(jwk.x!, "base64url");
      return new PublisherSigner(privateKey, publicKey, now);
    } catch (error) {
      throw new PublisherKeyError(
        "The publisher key is not an Ed25519 private key in PKCS #8 base64url; generate one with: main.ts keygen publisher",
        { cause: error },
      );
    }
  }

  /**
   * Stamps a change with a new version of this publisher and signs it.
   * `value` is JSON text, or `null` for a delete.
   */
  async sign(key: string, value: string | null): Promise<Entry> {
    const version = this.#clock.tick();
    const signature = await crypto.subtle.sign(
      ED25519,
      this.#privateKey,
      signedBytes({ key, value, version }),
    );
    return {
      key,
      value,
      version,
      sig: Buffer.from(signature).toString("base64url"),
    };
  }
}

/** Reason an entry failed verification. */
export type SignatureProblem = "unsigned" | "bad_signature";

/**
 * Verifies publisher signatures and remembers which entry objects passed.
 */
export class EntryVerifier {
  readonly #keys: CryptoKey[];
  readonly #verified = new WeakSet<Entry>();
  /** Hashes of signed bytes and signature that verified, oldest first. */
  readonly #cache = new Set<string>();

  private constructor(keys: CryptoKey[]) {
    this.#keys = keys;
  }

  /**
   * Imports public keys in base64url (raw 32 bytes each).
   *
   * @throws {PublisherKeyError} for a key that is not an Ed25519 public key.
   */
  static async fromPublicKeys(keys: readonly string[]): Promise<EntryVerifier> {
    const imported: CryptoKey[] = [];
    for (const [index, key] of keys.entries()) {
      try {
        imported.push(
          await crypto.subtle.importKey(
            "raw",
            Buffer.from(key, "base64url"),
            ED25519,
            false,
            ["verify"],
          ),
        );
      } catch (error) {
        throw new PublisherKeyError(
          `Publisher key ${index + 1} is not an Ed25519 public key`,
          { cause: error },
        );
      }
    }
    return new EntryVerifier(imported);
  }

  /** Verifies one entry against every publisher key. */
  async verify(entry: Entry): Promise<SignatureProblem | undefined> {
    if (entry.sig === undefined) return "unsigned";
    const bytes = signedBytes(entry);
    const cacheKey = createHash("sha256").update(bytes).update(entry.sig)
      .digest("base64");
    if (this.#cache.has(cacheKey)) return undefined;
    const signature = Buffer.from(entry.sig, "base64url");
    for (const key of this.#keys) {
      if (await crypto.subtle.verify(ED25519, key, signature, bytes)) {
        this.#cache.add(cacheKey);
        if (this.#cache.size > CACHE_SIZE) {
          this.#cache.delete(this.#cache.values().next().value!);
        }
        return undefined;
      }
    }
    return "bad_signature";
  }

  /**
   * Verifies entries and marks those that pass, for {@link check}. Never
   * rejects: an entry that fails is simply not marked.
   */
  async admit(entries: Iterable<Entry>): Promise<void> {
    const checks: Promise<void>[] = [];
    for (const entry of entries) {
      checks.push(
        this.verify(entry).then((problem) => {
          if (problem === undefined) this.#verified.add(entry);
        }, () => {}),
      );
    }
    await Promise.all(checks);
  }

  /**
   * Returns why an entry must not be merged, or `undefined` when
   * {@link admit} verified this very object.
   */
  check(
    entry: Entry,
  ): { reason: SignatureProblem; message: string } | undefined {
    if (this.#verified.has(entry)) return undefined;
    if (entry.sig === undefined) {
      return {
        reason: "unsigned",
        message: `Update ${entry.key}@${
          formatVersion(entry.version)
        } is not signed, and this instance requires publisher signatures`,
      };
    }
    return {
      reason: "bad_signature",
      message: `Update ${entry.key}@${
        formatVersion(entry.version)
      } has a signature that no publisher key verifies`,
    };
  }
}
