/**
 * A hash tree over key ranges, for anti-entropy.
 *
 * Keys are placed in one of 16^3 = 4096 leaves by a hash of the key alone.
 * A leaf's hash is the XOR of the 16-byte hashes of the entries in it, and an
 * inner node's hash is the XOR of its 16 children, which equals the XOR of all
 * entry hashes below it. XOR makes every update O(depth): the old entry hash
 * is XORed out and the new one in along one path, with no rebuild.
 *
 * Two nodes compare trees from the root down and descend only into children
 * whose hashes differ, so a round costs bytes in proportion to the number of
 * differing keys times the depth. The number of keys adds only the key lists
 * of differing leaves, about keys / 4096 entries each.
 *
 * Node paths are hex strings: `""` is the root, `"a"` a child of the root,
 * `"a3f"` a leaf.
 *
 * @module
 */

import { ENTRY_HASH_BYTES } from "./entry.ts";

/** Children per inner node. */
export const TREE_FANOUT = 16;
/** Levels below the root; leaves sit at this depth. */
export const TREE_DEPTH = 3;
/** Number of leaves. */
export const LEAF_COUNT = TREE_FANOUT ** TREE_DEPTH;

const HEX_DIGITS = "0123456789abcdef";
const ZERO_HASH = new Uint8Array(ENTRY_HASH_BYTES);

/** Returns the leaf index of a key: the low 12 bits of its FNV-1a hash. */
export function leafOf(key: string): number {
  let hash = 0x811c9dc5;
  for (let i = 0; i < key.length; i++) {
    hash ^= key.charCodeAt(i);
    hash = Math.imul(hash, 0x01000193);
  }
  return (hash >>> 0) % LEAF_COUNT;
}

/** Returns the hex path of the leaf with the given index. */
export function leafPath(leaf: number): string {
  return leaf.toString(16).padStart(TREE_DEPTH, "0");
}

/** Whether a path is well formed: 0 to 3 lowercase hex digits. */
export function isTreePath(path: string): boolean {
  return path.length <= TREE_DEPTH && /^[0-9a-f]*$/.test(path);
}

/** Encodes a hash as hex, or as `""` when it is all zeros (an empty range). */
export function hashToHex(hash: Uint8Array): string {
  let text = "";
  let zero = true;
  for (const byte of hash) {
    if (byte !== 0) zero = false;
    text += HEX_DIGITS[byte >> 4]! + HEX_DIGITS[byte & 15]!;
  }
  return zero ? "" : text;
}

/**
 * An incrementally maintained XOR hash tree.
 *
 * @example
 * ```ts
 * import { HashTree } from "./digest.ts";
 * const tree = new HashTree();
 * const hash = new Uint8Array(16).fill(7);
 * tree.add("a", hash);
 * tree.remove("a", hash);
 * tree.rootHex(); // "" (empty)
 * ```
 */
export class HashTree {
  /** Level `l` holds 16^l node hashes of 16 bytes each, back to back. */
  readonly #levels: Uint8Array[] = [];
  readonly #leafKeys = new Map<number, Set<string>>();

  constructor() {
    for (let level = 0; level <= TREE_DEPTH; level++) {
      this.#levels.push(
        new Uint8Array(TREE_FANOUT ** level * ENTRY_HASH_BYTES),
      );
    }
  }

  /** Adds a key's entry hash. */
  add(key: string, hash: Uint8Array): void {
    const leaf = leafOf(key);
    let keys = this.#leafKeys.get(leaf);
    if (!keys) {
      keys = new Set();
      this.#leafKeys.set(leaf, keys);
    }
    keys.add(key);
    this.#xorPath(leaf, hash);
  }

  /** Removes a key's entry hash; `hash` must be the one that was added. */
  remove(key: string, hash: Uint8Array): void {
    const leaf = leafOf(key);
    const keys = this.#leafKeys.get(leaf);
    if (!keys?.delete(key)) return;
    if (keys.size === 0) this.#leafKeys.delete(leaf);
    this.#xorPath(leaf, hash);
  }

  /** Replaces the hash of a key that is already in the tree. */
  replace(key: string, oldHash: Uint8Array, newHash: Uint8Array): void {
    const leaf = leafOf(key);
    this.#xorPath(leaf, oldHash);
    this.#xorPath(leaf, newHash);
  }

  /** Hex hash of the root; `""` when the tree is empty. */
  rootHex(): string {
    return this.hashHex("");
  }

  /** Hex hash of the node at `path`; `""` for an empty range. */
  hashHex(path: string): string {
    const level = path.length;
    const index = path === "" ? 0 : parseInt(path, 16);
    const bytes = this.#levels[level]!;
    const start = index * ENTRY_HASH_BYTES;
    return hashToHex(bytes.subarray(start, start + ENTRY_HASH_BYTES));
  }

  /** Hex hashes of the 16 children of an inner node, in order. */
  childrenHex(path: string): string[] {
    const children: string[] = [];
    for (let digit = 0; digit < TREE_FANOUT; digit++) {
      children.push(this.hashHex(path + HEX_DIGITS[digit]));
    }
    return children;
  }

  /** Keys in the leaf at `path`. */
  keysAt(path: string): string[] {
    return [...(this.#leafKeys.get(parseInt(path, 16)) ?? [])];
  }

  #xorPath(leaf: number, hash: Uint8Array): void {
    if (hash.length !== ENTRY_HASH_BYTES) {
      throw new RangeError(
        `Entry hash has ${hash.length} bytes; expected ${ENTRY_HASH_BYTES}`,
      );
    }
    let index = leaf;
    for (let level = TREE_DEPTH; level >= 0; level--) {
      const bytes = this.#levels[level]!;
      const start = index * ENTRY_HASH_BYTES;
      for (let i = 0; i < ENTRY_HASH_BYTES; i++) {
        bytes[start + i]! ^= hash[i]!;
      }
      index = Math.floor(index / TREE_FANOUT);
    }
  }
}

export { ZERO_HASH };
