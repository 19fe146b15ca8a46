/**
 * Client authorization: an admin token for writes and an optional read
 * token, sent as `Authorization: Bearer TOKEN`.
 *
 * Tokens are compared as SHA-256 digests with `timingSafeEqual` from
 * `node:crypto`, so the time a comparison takes does not depend on how many
 * leading characters match, nor on the token's length. (Deno's WebCrypto
 * has no `timingSafeEqual`.) Each variable may hold several tokens,
 * comma-separated, so that a token can be replaced without downtime. Every
 * configured token is compared on each request.
 *
 * @module
 */

import type { Buffer } from "node:buffer";
import { createHash, timingSafeEqual } from "node:crypto";

/** Kind of access a request needs: read or write. */
export type Access = "read" | "write";

/** Outcome of {@link AccessTokens.check}. */
export type AccessCheck = "ok" | "missing" | "invalid" | "forbidden";

/** Shortest token accepted, in characters. */
export const MIN_TOKEN_LENGTH = 16;

function digest(text: string): Buffer {
  return createHash("sha256").update(text, "utf8").digest();
}

/** Raised when a configured token cannot be used; never contains it. */
export class TokenError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "TokenError";
  }
}

/**
 * The tokens of one instance, kept only as digests.
 *
 * @example
 * ```ts
 * import { AccessTokens } from "./tokens.ts";
 * const tokens = new AccessTokens({
 *   admin: "admin-token-0123456789",
 *   readAccess: "open",
 * });
 * tokens.check(undefined, "read"); // "ok"
 * tokens.check(undefined, "write"); // "missing"
 * tokens.check("Bearer admin-token-0123456789", "write"); // "ok"
 * ```
 */
export class AccessTokens {
  readonly #admin: Buffer[];
  readonly #read: Buffer[];
  readonly #readOpen: boolean;

  /**
   * @throws {TokenError} for a token shorter than
   * {@link MIN_TOKEN_LENGTH}, or when reads need a token and no admin
   * token is set.
   */
  constructor(options: {
    admin?: string;
    read?: string;
    readAccess: "open" | "token";
  }) {
    const admin = splitTokens(options.admin, "admin");
    const read = splitTokens(options.read, "read");
    if (options.readAccess === "token" && admin.length === 0) {
      throw new TokenError(
        "readAccess is token, but no admin token is set; set one, because writes would be open to anyone",
      );
    }
    this.#admin = admin.map(digest);
    this.#read = read.map(digest);
    this.#readOpen = options.readAccess === "open";
  }

  /** Whether writes need a token. */
  get writesProtected(): boolean {
    return this.#admin.length > 0;
  }

  /** Whether reads need a token. */
  get readsProtected(): boolean {
    return !this.#readOpen;
  }

  /**
   * Checks the `Authorization` header of a request that needs `access`.
   * `forbidden` means a valid read token on a write.
   */
  check(authorization: string | null | undefined, access: Access): AccessCheck {
    const open = access === "read" ? this.#readOpen : !this.writesProtected;
    if (open) return "ok";
    const match = /^Bearer +(\S+) *$/i.exec(authorization ?? "");
    if (!match) return "missing";
    const given = digest(match[1]!);
    if (matchesAny(given, this.#admin)) return "ok";
    if (matchesAny(given, this.#read)) {
      return access === "read" ? "ok" : "forbidden";
    }
    return "invalid";
  }
}

/** Compares against every digest, without stopping at the first match. */
function matchesAny(given: Buffer, digests: readonly Buffer[]): boolean {
  let found = false;
  for (const expected of digests) {
    if (timingSafeEqual(given, expected)) found = true;
  }
  return found;
}

function splitTokens(text: string | undefined, name: string): string[] {
  const tokens = (text ?? "").split(",").map((token) => token.trim())
    .filter((token) => token !== "");
  for (const [index, token] of tokens.entries()) {
    if (token.length < MIN_TOKEN_LENGTH) {
      throw new TokenError(
        `The ${name} token ${
          index + 1
        } is shorter than ${MIN_TOKEN_LENGTH} characters; generate one with: main.ts keygen token`,
      );
    }
  }
  return tokens;
}
