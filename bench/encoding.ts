/**
 * Wire encoding and compression, measured on real frames: JSON (the wire
 * format) against two MessagePack encoders from npm (msgpackr and
 * `@msgpack/msgpack`), and raw deflate (node:zlib) of large frames. Sizes
 * are bytes on the wire; times are encode plus decode of one frame, and
 * beside them the full receive path of a JSON frame today (`parseFrame`:
 * JSON.parse plus schema validation).
 *
 * @module
 */

import { deflateRawSync, inflateRawSync } from "node:zlib";
// These two packages are used by this benchmark only. They stay out of
// deno.json's import map so that starting an instance does not install them.
// deno-lint-ignore no-import-prefix
import { Packr } from "npm:msgpackr@^2.1.3";
import {
  decode as msgpackDecode,
  encode as msgpackEncode,
  // deno-lint-ignore no-import-prefix
} from "npm:@msgpack/msgpack@^3.1.3";
import {
  encodeFrame,
  type Frame,
  parseFrame,
  PROTOCOL_VERSION,
} from "../lib/protocol/messages.ts";
import type { Entry } from "../lib/protocol/entry.ts";

/** Figures of one frame. */
export interface EncodingRow {
  readonly frame: string;
  readonly jsonBytes: number;
  readonly msgpackrBytes: number;
  readonly msgpackBytes: number;
  /** Raw deflate of the JSON text; NaN below the compression threshold. */
  readonly deflateBytes: number;
  /** Microseconds to encode and decode once. */
  readonly jsonUs: number;
  readonly msgpackrUs: number;
  readonly msgpackUs: number;
  /** Microseconds of `parseFrame` (decode and validate) alone. */
  readonly parseFrameUs: number;
  /** Microseconds to deflate and inflate the JSON text once. */
  readonly deflateUs: number;
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();

const WORDS = [
  "region",
  "checkout",
  "cache",
  "timeout",
  "retry",
  "banner",
  "eu-west",
  "us-east",
  "enabled",
  "limit",
  "canary",
  "primary",
  "backend",
  "https://api.example.com/v2",
  "true",
  "false",
];

/** Config-like text: words in a seeded random order, with numbers. */
function note(seed: number, bytes: number): string {
  let state = seed * 2654435761 >>> 0;
  let text = "";
  while (text.length < bytes) {
    state = (state * 1103515245 + 12345) >>> 0;
    text += WORDS[state % WORDS.length]! + " " + (state % 9973) + " ";
  }
  return text.slice(0, bytes);
}

function entry(i: number, valueBytes: number): Entry {
  const value = JSON.stringify({
    enabled: i % 2 === 0,
    rollout: i % 100,
    note: note(i, Math.max(0, valueBytes - 40)),
  });
  return {
    key: `features.service-${i % 50}.flag-${i}`,
    value,
    version: [1_764_000_000_000 + i, i % 3, `node-${i % 7}`],
  };
}

/** Returns the frames measured, as an instance sends them. */
export function sampleFrames(): { name: string; frame: Frame }[] {
  const v = PROTOCOL_VERSION;
  const member = {
    id: "node-3",
    region: "eu-west",
    url: "http://10.0.0.3:8000",
    incarnation: 1_764_000_000_123,
    state: "alive" as const,
  };
  const hex = (i: number) => i.toString(16).padStart(32, "0");
  return [
    { name: "ping", frame: { v, type: "ping", seq: 12345 } },
    {
      name: "rumor, 1 entry of 170 B",
      frame: { v, type: "rumor", entries: [entry(1, 170)] },
    },
    {
      name: "rumor, 1 entry, 2 membership updates",
      frame: {
        v,
        type: "rumor",
        entries: [entry(1, 170)],
        updates: [member, { ...member, id: "node-4" }],
      },
    },
    {
      name: "rumor, 32 entries of 170 B (merged)",
      frame: {
        v,
        type: "rumor",
        entries: Array.from({ length: 32 }, (_, i) => entry(i, 170)),
      },
    },
    {
      name: "sync_response, 16 child hashes",
      frame: {
        v,
        type: "sync_response",
        rid: 7,
        body: {
          diffs: [{
            path: "a",
            children: Array.from({ length: 16 }, (_, i) => hex(i * 7919)),
          }],
          entries: [],
          skipped: [],
        },
      },
    },
    {
      name: "sync_response, 256 entries of 170 B",
      frame: {
        v,
        type: "sync_response",
        rid: 8,
        body: {
          diffs: [],
          entries: Array.from({ length: 256 }, (_, i) => entry(i, 170)),
          skipped: [],
        },
      },
    },
    {
      name: "sync_response, 256 entries of 1 KB",
      frame: {
        v,
        type: "sync_response",
        rid: 9,
        body: {
          diffs: [],
          entries: Array.from({ length: 256 }, (_, i) => entry(i, 1000)),
          skipped: [],
        },
      },
    },
  ];
}

/** Mean microseconds per call of `work`, over at least `ms` milliseconds. */
function time(work: () => void, ms: number): number {
  for (let i = 0; i < 20; i++) work();
  let calls = 0;
  const started = performance.now();
  let elapsed = 0;
  while (elapsed < ms) {
    for (let i = 0; i < 10; i++) work();
    calls += 10;
    elapsed = performance.now() - started;
  }
  return elapsed * 1000 / calls;
}

/** Frames at least this large are worth compressing (see the report). */
export const DEFLATE_THRESHOLD = 1024;

/** Measures every sample frame, `ms` milliseconds per timing. */
export function measureEncoding(ms = 200): EncodingRow[] {
  const packr = new Packr({ useRecords: false });
  const rows: EncodingRow[] = [];
  for (const { name, frame } of sampleFrames()) {
    const text = encodeFrame(frame);
    const json = encoder.encode(text);
    const packed = packr.pack(frame);
    const msgpack = msgpackEncode(frame);
    const large = json.length >= DEFLATE_THRESHOLD;
    const deflated = large ? deflateRawSync(json) : undefined;
    rows.push({
      frame: name,
      jsonBytes: json.length,
      msgpackrBytes: packed.length,
      msgpackBytes: msgpack.length,
      deflateBytes: deflated ? deflated.length : NaN,
      jsonUs: time(() => {
        JSON.parse(decoder.decode(encoder.encode(JSON.stringify(frame))));
      }, ms),
      msgpackrUs: time(() => packr.unpack(packr.pack(frame)), ms),
      msgpackUs: time(() => msgpackDecode(msgpackEncode(frame)), ms),
      parseFrameUs: time(() => parseFrame(text, 1 << 24), ms),
      deflateUs: large
        ? time(() => inflateRawSync(deflateRawSync(json)), ms)
        : NaN,
    });
  }
  return rows;
}

if (import.meta.main) console.table(measureEncoding());
