/**
 * Merging of outgoing rumor frames on one link.
 *
 * Under write load the protocol core sends one rumor frame per write and
 * eager link. A link keeps those frames briefly and sends them as few
 * frames as the frame limits allow, which saves per-frame work on both ends
 * and keeps a busy writer under the receiver's `maxFramesPerSecond`.
 *
 * @module
 */

import { compareVersions } from "../protocol/clock.ts";
import type { Entry } from "../protocol/entry.ts";
import {
  type FrameOf,
  MAX_PIGGYBACK,
  type MemberUpdate,
} from "../protocol/messages.ts";
import { entrySize } from "../protocol/sync.ts";

/** Limits of one merged frame. */
export interface RumorMergeLimits {
  readonly maxEntriesPerFrame: number;
  /** Bytes of entries per frame, as counted by `entrySize`. */
  readonly maxEntryBytes: number;
}

/**
 * Merges rumor frames, in order, into as few frames as the limits allow.
 * Within one merged frame an entry that appears twice is sent once, at its
 * highest version. Membership updates ride along on the frame their
 * original frame went into, so none is lost.
 */
export function mergeRumorFrames(
  frames: readonly FrameOf<"rumor">[],
  limits: RumorMergeLimits,
): FrameOf<"rumor">[] {
  if (frames.length <= 1) return [...frames];
  const merged: FrameOf<"rumor">[] = [];
  let entries = new Map<string, Entry>();
  let updates: MemberUpdate[] = [];
  let bytes = 0;
  const finish = () => {
    if (entries.size === 0) return;
    const frame: FrameOf<"rumor"> = {
      v: 1,
      type: "rumor",
      entries: [...entries.values()],
    };
    merged.push(updates.length > 0 ? { ...frame, updates } : frame);
    entries = new Map();
    updates = [];
    bytes = 0;
  };
  for (const frame of frames) {
    const frameUpdates = frame.updates ?? [];
    if (updates.length + frameUpdates.length > MAX_PIGGYBACK) finish();
    for (const entry of frame.entries) {
      const size = entrySize(entry);
      const known = entries.get(entry.key);
      if (known) {
        if (compareVersions(entry.version, known.version) > 0) {
          entries.set(entry.key, entry);
        }
        continue;
      }
      const full = entries.size >= limits.maxEntriesPerFrame ||
        (entries.size > 0 && bytes + size > limits.maxEntryBytes);
      if (full) finish();
      entries.set(entry.key, entry);
      bytes += size;
    }
    updates.push(...frameUpdates);
  }
  finish();
  return merged;
}
