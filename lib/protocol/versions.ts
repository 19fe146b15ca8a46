/**
 * Protocol version negotiation on peer links, so that builds of two
 * adjacent protocol versions interoperate during a rolling upgrade.
 *
 * The rule: a build speaks a range of versions, from
 * {@link MIN_PROTOCOL_VERSION} to its `maxProtocolVersion` setting, and two
 * builds interoperate when their ranges overlap. Each link speaks the
 * highest version in both ranges.
 *
 * 1. The dialler sends its range in the {@link PROTOCOL_HEADER} request
 *    header of the WebSocket upgrade, such as `1-2`. Builds of version 1
 *    send no header, and an absent header means the range `1-1`.
 * 2. The acceptor picks the link's version and writes every frame in it,
 *    its `hello` included. A build of version 1 ignores the header and
 *    writes version 1.
 * 3. The dialler writes version {@link MIN_PROTOCOL_VERSION}, which every
 *    overlapping range contains, until the acceptor's `hello` arrives, and
 *    from then on the version of that hello.
 *
 * Neither end ever sends a frame in a version the other does not speak, so
 * frames stay strict within a version. An acceptor with no version in
 * common rejects the upgrade with HTTP 400 and logs both ranges. The fleet
 * key proof does not cover the header, so an attacker on the path can at
 * most make a link speak an older version that both ends speak, with the
 * same authentication.
 *
 * Anti-entropy and probes over HTTP keep the version 1 layout and carry
 * `v: 1`; a build accepts them with any version it speaks.
 * NOTE: a future version that changes an HTTP body must negotiate it too,
 * for example with the same header.
 *
 * @module
 */

import { MIN_PROTOCOL_VERSION } from "./messages.ts";

/** Request header of a `/gossip` upgrade with the dialler's version range. */
export const PROTOCOL_HEADER = "grapevine-protocol";

/** A range of protocol versions, both ends included. */
export interface VersionRange {
  readonly min: number;
  readonly max: number;
}

/** Formats a range as the header value, `MIN-MAX`. */
export function formatVersionRange(range: VersionRange): string {
  return `${range.min}-${range.max}`;
}

/**
 * Parses a {@link PROTOCOL_HEADER} value. A missing header is the range of
 * builds that predate the header, `1-1`. Returns `undefined` for a value
 * that is not `MIN-MAX` with 1 ≤ MIN ≤ MAX.
 */
export function parseVersionRange(
  header: string | null | undefined,
): VersionRange | undefined {
  if (header === null || header === undefined) {
    return { min: MIN_PROTOCOL_VERSION, max: MIN_PROTOCOL_VERSION };
  }
  const match = /^\s*(\d{1,6})-(\d{1,6})\s*$/.exec(header);
  if (!match) return undefined;
  const min = Number(match[1]);
  const max = Number(match[2]);
  return min >= 1 && min <= max ? { min, max } : undefined;
}

/**
 * Returns the highest version in both ranges, or `undefined` when they do
 * not overlap.
 *
 * @example
 * ```ts
 * import { negotiateVersion } from "./versions.ts";
 * negotiateVersion({ min: 1, max: 2 }, { min: 1, max: 1 }); // 1
 * negotiateVersion({ min: 1, max: 2 }, { min: 1, max: 2 }); // 2
 * ```
 */
export function negotiateVersion(
  own: VersionRange,
  peer: VersionRange,
): number | undefined {
  const version = Math.min(own.max, peer.max);
  return version >= Math.max(own.min, peer.min) ? version : undefined;
}
