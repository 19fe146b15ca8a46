/**
 * Config entries as last-writer-wins registers.
 *
 * Every key holds one entry: its value as JSON text and the version of the
 * write that produced it. A delete is an entry too, a tombstone with a `null`
 * value, so that it can win against older writes arriving late. Merging keeps
 * the entry with the higher version. That rule is commutative, associative
 * and idempotent, so the order and repetition of gossip cannot change the
 * result.
 *
 * @module
 */

import { createHash } from "node:crypto";
import { compareVersions, formatVersion, type Version } from "./clock.ts";

/** One versioned config entry; `value` is JSON text, or `null` for a delete. */
export interface Entry {
  readonly key: string;
  readonly value: string | null;
  readonly version: Version;
  /**
   * The publisher's Ed25519 signature of key, version and value, in
   * base64url, when updates are signed. It is not part of the entry hash.
   */
  readonly sig?: string;
}

/** Key syntax: starts with a letter or digit, then letters, digits, `._:/-`. */
export const KEY_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._:/-]*$/;

const encoder = new TextEncoder();

/** Returns the UTF-8 size of a string in bytes. */
export function byteLength(text: string): number {
  return encoder.encode(text).byteLength;
}

/** Limits that {@link checkKey} and {@link checkValue} enforce. */
export interface EntryLimits {
  /** Maximum key size in UTF-8 bytes. */
  readonly maxKeyBytes: number;
  /** Maximum value size in bytes of its JSON text. */
  readonly maxValueBytes: number;
}

/**
 * Checks a key against the key syntax and size limit; returns an error
 * message, or `undefined` when the key is valid.
 *
 * @example
 * ```ts
 * import { checkKey } from "./entry.ts";
 * checkKey("features.checkout", { maxKeyBytes: 512, maxValueBytes: 1024 }); // undefined
 * ```
 */
export function checkKey(key: string, limits: EntryLimits): string | undefined {
  if (key.length === 0) return "Key is empty; give a non-empty key";
  const size = byteLength(key);
  if (size > limits.maxKeyBytes) {
    return `Key is ${size} bytes, more than the maximum of ${limits.maxKeyBytes} bytes`;
  }
  if (!KEY_PATTERN.test(key)) {
    return `Key ${
      JSON.stringify(key.slice(0, 80))
    } is invalid: use letters, digits and . _ : / -, starting with a letter or digit`;
  }
  return undefined;
}

/**
 * Checks the JSON text of a value against the size limit; returns an error
 * message, or `undefined` when it fits.
 */
export function checkValue(
  json: string,
  limits: EntryLimits,
): string | undefined {
  const size = byteLength(json);
  if (size > limits.maxValueBytes) {
    return `Value is ${size} bytes of JSON, more than the maximum of ${limits.maxValueBytes} bytes; split it into several keys`;
  }
  return undefined;
}

/**
 * Maximum nesting of arrays and objects in a value. Serializing much deeper
 * JSON overflows the call stack, so one such value would break every read
 * and watch stream that includes it.
 */
export const MAX_VALUE_DEPTH = 64;

/**
 * Returns the deepest nesting of arrays and objects in JSON text, scanning
 * it without recursion; brackets inside strings do not count.
 */
export function jsonDepth(json: string): number {
  let depth = 0;
  let deepest = 0;
  let inString = false;
  for (let i = 0; i < json.length; i++) {
    const code = json.charCodeAt(i);
    if (inString) {
      if (code === 0x5c) i++; // a backslash escapes the next character
      else if (code === 0x22) inString = false;
    } else if (code === 0x22) {
      inString = true;
    } else if (code === 0x5b || code === 0x7b) {
      depth++;
      if (depth > deepest) deepest = depth;
    } else if (code === 0x5d || code === 0x7d) {
      depth--;
    }
  }
  return deepest;
}

/** Whether the entry is a delete marker. */
export function isTombstone(entry: Entry): boolean {
  return entry.value === null;
}

/**
 * Returns true when `incoming` should replace `current` under
 * last-writer-wins: when there is no current entry, or the incoming entry
 * orders above it by {@link compareEntries}.
 *
 * @example
 * ```ts
 * import { supersedes } from "./entry.ts";
 * supersedes({ key: "a", value: "1", version: [2, 0, "x"] }, {
 *   key: "a", value: "2", version: [1, 0, "y"],
 * }); // true
 * ```
 */
export function supersedes(incoming: Entry, current: Entry | undefined) {
  return current === undefined || compareEntries(incoming, current) > 0;
}

/**
 * Orders two entries of one key by version. For equal versions, a delete
 * orders above a value, and of two values the greater string is above.
 * Equal versions with different values arise only from a fault, such as two
 * instances with one id, and the fixed order makes every node keep the same
 * one.
 */
export function compareEntries(a: Entry, b: Entry): number {
  const order = compareVersions(a.version, b.version);
  if (order !== 0 || a.value === b.value) return order;
  if (a.value === null) return 1;
  if (b.value === null) return -1;
  return a.value < b.value ? -1 : 1;
}

/** Returns the id of the update that produced an entry: `key@version`. */
export function updateId(entry: Pick<Entry, "key" | "version">): string {
  return `${entry.key}@${formatVersion(entry.version)}`;
}

/** Size of an entry hash in bytes. */
export const ENTRY_HASH_BYTES = 16;

/**
 * Hashes an entry (key, version and value) to 16 bytes of SHA-256. Digests
 * combine these hashes, so two nodes have equal digests exactly when they
 * hold the same entries, barring a hash collision.
 */
export function hashEntry(entry: Entry): Uint8Array {
  const hash = createHash("sha256");
  hash.update(entry.key);
  hash.update("\0");
  hash.update(formatVersion(entry.version));
  hash.update("\0");
  hash.update(entry.value === null ? "\u0001tombstone" : entry.value);
  return Uint8Array.from(hash.digest().subarray(0, ENTRY_HASH_BYTES));
}
