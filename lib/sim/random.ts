/**
 * Seeded pseudo-random numbers, so that every simulation run can be
 * replayed from its seed.
 *
 * The generator is mulberry32 (Tommy Ettinger, 2017): 32 bits of state, a
 * period of 2^32 and good enough statistics for choosing gossip partners.
 * It is not cryptographically secure.
 *
 * @module
 */

/** A source of uniform random numbers in [0, 1), like `Math.random`. */
export type Random = () => number;

/**
 * Returns a generator seeded with `seed` (any number; it is reduced to 32
 * bits).
 *
 * @example
 * ```ts
 * import { seededRandom } from "./random.ts";
 * const a = seededRandom(7);
 * const b = seededRandom(7);
 * a() === b(); // true
 * ```
 */
export function seededRandom(seed: number): Random {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * Derives the seed of stream `stream` (a node index, a run number) from a
 * run seed, so that streams do not overlap in their first values. The mixer
 * is the finalizer of MurmurHash3.
 */
export function streamSeed(seed: number, stream: number): number {
  let h = (seed >>> 0) ^ Math.imul(stream + 1, 0x9e3779b9);
  h = Math.imul(h ^ (h >>> 16), 0x85ebca6b);
  h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35);
  return (h ^ (h >>> 16)) >>> 0;
}

/** Returns a whole number from 0 to `bound - 1`. */
export function randomInt(random: Random, bound: number): number {
  return Math.floor(random() * bound);
}

/**
 * Picks `count` distinct whole numbers from 0 to `bound - 1`, none equal to
 * `exclude`, by rejection. Meant for a count far below `bound`.
 *
 * @throws {RangeError} when fewer than `count` numbers are available.
 */
export function sampleDistinct(
  random: Random,
  bound: number,
  count: number,
  exclude: number,
): number[] {
  const available = exclude >= 0 && exclude < bound ? bound - 1 : bound;
  if (count > available) {
    throw new RangeError(
      `Cannot pick ${count} distinct numbers below ${bound} without ${exclude}; reduce the count`,
    );
  }
  const picked: number[] = [];
  while (picked.length < count) {
    const candidate = randomInt(random, bound);
    if (candidate !== exclude && !picked.includes(candidate)) {
      picked.push(candidate);
    }
  }
  return picked;
}
