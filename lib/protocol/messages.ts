/**
 * Wire frames between Grapevine nodes, with their zod schemas.
 *
 * Every frame is one JSON text message with a protocol version `v` and a
 * `type`. {@link parseFrame} is the only way frames enter the protocol core:
 * it never throws, and it classifies each rejection so that the caller can
 * count it by kind.
 *
 * This build speaks versions {@link MIN_PROTOCOL_VERSION} to
 * {@link PROTOCOL_VERSION}. Inside the core every frame has the version 1
 * layout; {@link encodeFrame} writes a frame in the layout of the version a
 * link speaks, and {@link parseFrame} reads either layout back. Version 2
 * differs in one frame: `rumor` carries its entries as arrays (see
 * {@link CompactEntrySchema}). Within a version, frames are strict: an
 * unknown field is invalid, because a link only ever carries frames of a
 * version that both ends speak (see versions.ts).
 *
 * @module
 */

import { z } from "zod";
import { MAX_COUNTER } from "./clock.ts";
import { TREE_DEPTH, TREE_FANOUT } from "./digest.ts";

/** Newest protocol version this build speaks. */
export const PROTOCOL_VERSION = 2;

/**
 * Oldest protocol version this build speaks: each build speaks its own
 * version and the one before, so that two adjacent builds interoperate.
 */
export const MIN_PROTOCOL_VERSION = PROTOCOL_VERSION - 1;

/** Node ids: a letter or digit, then letters, digits, `_.-`; 1 to 64 chars. */
export const NODE_ID_PATTERN = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/;

/** Schema of a node id. */
export const NodeIdSchema = z.string().regex(NODE_ID_PATTERN);

const WallMsSchema = z.int().min(0).max(Number.MAX_SAFE_INTEGER);
const CounterSchema = z.int().min(0).max(MAX_COUNTER);

/** Schema of a version triple `[wallMs, counter, nodeId]`. */
export const VersionSchema = z.tuple([
  WallMsSchema,
  CounterSchema,
  NodeIdSchema,
])
  .readonly();

/** Schema of a publisher's Ed25519 signature: 64 bytes in base64url. */
export const SignatureSchema = z.string().regex(/^[A-Za-z0-9_-]{86}$/);

/** Schema of an entry on the wire. Key syntax and sizes are checked later. */
export const EntrySchema = z.strictObject({
  key: z.string().min(1).max(2048),
  value: z.string().nullable(),
  version: VersionSchema,
  /** The publisher's signature, when updates are signed. */
  sig: SignatureSchema.optional(),
});

/** Schema of what a node tells others about a member of the fleet. */
export const MemberSchema = z.strictObject({
  id: NodeIdSchema,
  region: z.string().min(1).max(64),
  /** Base URL where the member accepts links, or null if it cannot be dialled. */
  url: z.url({ protocol: /^https?$/ }).max(2048).nullable(),
  incarnation: z.int().min(0).max(Number.MAX_SAFE_INTEGER),
});

/** Liveness states that members gossip about each other. */
export const MEMBER_STATES = ["alive", "suspect", "dead", "left"] as const;

/**
 * Schema of a membership update: a member record and the state the sender
 * believes it is in. Updates ride along on other frames (piggyback).
 */
export const MemberUpdateSchema = MemberSchema.extend({
  state: z.enum(MEMBER_STATES),
});

/** Updates carried by one frame at most. */
export const MAX_PIGGYBACK = 64;

const piggyback = {
  /** Membership updates riding along with this frame. */
  updates: z.array(MemberUpdateSchema).max(MAX_PIGGYBACK).optional(),
};

const TreePathSchema = z.string().max(TREE_DEPTH).regex(/^[0-9a-f]*$/);
const HashHexSchema = z.string().regex(/^([0-9a-f]{32})?$/);

/** One anti-entropy step from the initiator. */
export const SyncRequestSchema = z.strictObject({
  /** Tree nodes, as `[path, hash]`, that the responder compares with its own. */
  nodes: z.array(z.tuple([TreePathSchema, HashHexSchema])).max(4096),
  /** Keys whose entries the initiator wants. */
  want: z.array(z.string().max(2048)).max(4096),
  /** Entries the initiator has and the responder lacks or holds older. */
  push: z.array(EntrySchema).max(4096),
});

/** The responder's answer to a {@link SyncRequestSchema} step. */
export const SyncResponseSchema = z.strictObject({
  /** One item per requested node whose hash differs. */
  diffs: z.array(z.strictObject({
    path: TreePathSchema,
    /** Hashes of the 16 children, for an inner node. */
    children: z.array(HashHexSchema).length(TREE_FANOUT).optional(),
    /** Keys and versions in it, for a leaf. */
    items: z.array(z.tuple([z.string().max(2048), VersionSchema])).optional(),
  })).max(4096),
  /** Entries the initiator asked for in `want`. */
  entries: z.array(EntrySchema).max(4096),
  /** Wanted keys left out to keep the frame small; the initiator asks again. */
  skipped: z.array(z.string().max(2048)).max(4096),
  /**
   * Sent only by a responder that cannot vouch for its state (it has a
   * quarantine, see quarantine.ts); such a session drops no quarantined
   * entry of the initiator.
   */
  quarantined: z.literal(true).optional(),
});

/**
 * Schema of an entry in a version 2 `rumor` frame:
 * `[key, value, wallMs, counter, nodeId]`, with the signature as a sixth
 * item when there is one. Leaving out the field names saves 26 bytes per
 * entry, 32 with a signature.
 */
export const CompactEntrySchema = z.union([
  z.tuple([
    EntrySchema.shape.key,
    EntrySchema.shape.value,
    WallMsSchema,
    CounterSchema,
    NodeIdSchema,
  ]),
  z.tuple([
    EntrySchema.shape.key,
    EntrySchema.shape.value,
    WallMsSchema,
    CounterSchema,
    NodeIdSchema,
    SignatureSchema,
  ]),
]);

/** Schema of a `rumor` frame in the version 2 layout. */
const CompactRumorSchema = z.strictObject({
  v: z.literal(2),
  type: z.literal("rumor"),
  entries: z.array(CompactEntrySchema).min(1).max(4096),
  ...piggyback,
});

/** The version field of frames inside the core, which keep the version 1 layout. */
const base = {
  v: z.int().min(MIN_PROTOCOL_VERSION).max(PROTOCOL_VERSION),
};

/** Schema of every frame this protocol version accepts. */
export const FrameSchema = z.discriminatedUnion("type", [
  z.strictObject({
    ...base,
    type: z.literal("hello"),
    member: MemberSchema,
  }),
  z.strictObject({
    ...base,
    type: z.literal("rumor"),
    entries: z.array(EntrySchema).min(1).max(4096),
    ...piggyback,
  }),
  z.strictObject({
    ...base,
    type: z.literal("feedback"),
    /** Updates the sender already had, as `[key, version]`. */
    known: z.array(z.tuple([z.string().max(2048), VersionSchema])).max(4096),
  }),
  z.strictObject({
    ...base,
    type: z.literal("ihave"),
    /** Recent updates of the sender, as `[key, version]`. */
    items: z.array(z.tuple([z.string().max(2048), VersionSchema])).min(1)
      .max(4096),
  }),
  z.strictObject({
    ...base,
    type: z.literal("graft"),
    /** Keys the sender lacks; the link becomes eager again both ways. */
    keys: z.array(z.string().max(2048)).max(4096),
  }),
  z.strictObject({
    ...base,
    type: z.literal("members"),
    members: z.array(MemberSchema).max(1024),
    ...piggyback,
  }),
  z.strictObject({
    ...base,
    type: z.literal("probe"),
    /** Probe number, unique per sender. */
    seq: z.int().min(0).max(Number.MAX_SAFE_INTEGER),
    /** The sender. */
    from: MemberSchema,
    /** Member whose liveness is asked; another id than the receiver's asks the receiver to probe it (an indirect probe). */
    target: NodeIdSchema,
    ...piggyback,
  }),
  z.strictObject({
    ...base,
    type: z.literal("probe_ack"),
    /** The `seq` of the probe this answers. */
    seq: z.int().min(0).max(Number.MAX_SAFE_INTEGER),
    from: MemberSchema,
    /** The member that answered, directly or through the sender. */
    target: NodeIdSchema,
    ...piggyback,
  }),
  z.strictObject({
    ...base,
    type: z.literal("shuffle"),
    /** A random sample of the sender's views, itself included. */
    sample: z.array(MemberSchema).max(64),
    /** True for the answer to a shuffle, which is not answered again. */
    reply: z.boolean(),
    ...piggyback,
  }),
  z.strictObject({
    ...base,
    type: z.literal("ping"),
    seq: z.int().min(0).max(Number.MAX_SAFE_INTEGER),
  }),
  z.strictObject({
    ...base,
    type: z.literal("pong"),
    seq: z.int().min(0).max(Number.MAX_SAFE_INTEGER),
  }),
  z.strictObject({
    ...base,
    type: z.literal("sync_request"),
    rid: z.int().min(0).max(Number.MAX_SAFE_INTEGER),
    body: SyncRequestSchema,
  }),
  z.strictObject({
    ...base,
    type: z.literal("sync_response"),
    rid: z.int().min(0).max(Number.MAX_SAFE_INTEGER),
    body: SyncResponseSchema,
  }),
  z.strictObject({
    ...base,
    type: z.literal("bye"),
  }),
  z.strictObject({
    ...base,
    /** First frame of each side of a link in a fleet with keys. */
    type: z.literal("auth"),
    kid: z.string().regex(/^[0-9a-f]{8}$/),
    nonce: z.string().regex(/^[A-Za-z0-9_-]{16,64}$/),
    mac: z.string().regex(/^[A-Za-z0-9_-]{43}$/),
  }),
]);

/** Any frame. */
export type Frame = z.infer<typeof FrameSchema>;
/** A member record on the wire. */
export type MemberInfo = z.infer<typeof MemberSchema>;
/** A membership update on the wire. */
export type MemberUpdate = z.infer<typeof MemberUpdateSchema>;
/** The body of an anti-entropy request. */
export type SyncRequest = z.infer<typeof SyncRequestSchema>;
/** The body of an anti-entropy response. */
export type SyncResponse = z.infer<typeof SyncResponseSchema>;
/** A frame of one type, for example `FrameOf<"rumor">`. */
export type FrameOf<T extends Frame["type"]> = Extract<Frame, { type: T }>;

/** Why a frame was rejected; used as a metric label. */
export type InvalidFrameKind =
  | "binary"
  | "oversized"
  | "invalid_json"
  | "unsupported_version"
  | "unknown_type"
  | "invalid_fields"
  | "too_many_entries";

/** Result of {@link parseFrame}. */
export type ParseResult =
  | { ok: true; frame: Frame }
  | { ok: false; kind: InvalidFrameKind; message: string };

const FRAME_TYPES = new Set(
  FrameSchema.options.map((option) => option.shape.type.value as string),
);

/**
 * Parses and validates one frame of a version from
 * {@link MIN_PROTOCOL_VERSION} to `maxVersion`. Never throws. A version 2
 * `rumor` comes back in the version 1 layout, with `v` still 2.
 *
 * @example
 * ```ts
 * import { parseFrame } from "./messages.ts";
 * const result = parseFrame('{"v":1,"type":"ping","seq":3}', 1024);
 * result.ok; // true
 * ```
 */
export function parseFrame(
  data: unknown,
  maxBytes: number,
  maxVersion: number = PROTOCOL_VERSION,
): ParseResult {
  if (typeof data !== "string") {
    return { ok: false, kind: "binary", message: "Frame is not text" };
  }
  // A UTF-16 length over the limit is at least that many UTF-8 bytes too.
  if (data.length > maxBytes) {
    return {
      ok: false,
      kind: "oversized",
      message: `Frame of ${data.length} characters is over ${maxBytes} bytes`,
    };
  }
  let json: unknown;
  try {
    json = JSON.parse(data);
  } catch {
    return { ok: false, kind: "invalid_json", message: "Frame is not JSON" };
  }
  if (typeof json !== "object" || json === null || Array.isArray(json)) {
    return {
      ok: false,
      kind: "invalid_fields",
      message: "Frame is not a JSON object",
    };
  }
  const record = json as Record<string, unknown>;
  const version = record.v;
  if (
    typeof version !== "number" || !Number.isInteger(version) ||
    version < MIN_PROTOCOL_VERSION || version > maxVersion
  ) {
    return {
      ok: false,
      kind: "unsupported_version",
      message: `Frame has protocol version ${
        JSON.stringify(version)?.slice(0, 20)
      }; this node speaks ${MIN_PROTOCOL_VERSION} to ${maxVersion}`,
    };
  }
  if (typeof record.type !== "string" || !FRAME_TYPES.has(record.type)) {
    return {
      ok: false,
      kind: "unknown_type",
      message: `Frame type ${
        JSON.stringify(record.type)?.slice(0, 40)
      } is unknown`,
    };
  }
  if (version >= 2 && record.type === "rumor") return parseCompactRumor(json);
  const parsed = FrameSchema.safeParse(json);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const where = issue?.path.join(".") || "frame";
    return {
      ok: false,
      kind: "invalid_fields",
      message: `Frame ${record.type} is invalid at ${where}: ${issue?.message}`,
    };
  }
  return { ok: true, frame: parsed.data };
}

function parseCompactRumor(json: unknown): ParseResult {
  const parsed = CompactRumorSchema.safeParse(json);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const where = issue?.path.join(".") || "frame";
    return {
      ok: false,
      kind: "invalid_fields",
      message: `Frame rumor is invalid at ${where}: ${issue?.message}`,
    };
  }
  const { v, updates } = parsed.data;
  const entries = parsed.data.entries.map(
    ([key, value, wallMs, counter, node, sig]) =>
      sig === undefined
        ? { key, value, version: [wallMs, counter, node] as const }
        : { key, value, version: [wallMs, counter, node] as const, sig },
  );
  const frame: FrameOf<"rumor"> = updates === undefined
    ? { v, type: "rumor", entries }
    : { v, type: "rumor", entries, updates };
  return { ok: true, frame };
}

/**
 * Serialises a frame to its JSON text in the layout of protocol `version`,
 * whatever the frame's own `v`. The default, version 1, is the layout that
 * every version reads, and is used for HTTP bodies.
 */
export function encodeFrame(
  frame: Frame,
  version: number = MIN_PROTOCOL_VERSION,
): string {
  if (version >= 2 && frame.type === "rumor") {
    const entries = frame.entries.map((entry) => {
      const [wallMs, counter, node] = entry.version;
      return entry.sig === undefined
        ? [entry.key, entry.value, wallMs, counter, node]
        : [entry.key, entry.value, wallMs, counter, node, entry.sig];
    });
    return JSON.stringify(
      frame.updates === undefined
        ? { v: version, type: "rumor", entries }
        : { v: version, type: "rumor", entries, updates: frame.updates },
    );
  }
  return JSON.stringify(frame.v === version ? frame : { ...frame, v: version });
}

/** WebSocket close codes used on peer links. */
export const CLOSE_CODES = {
  /** Normal close. */
  normal: 1000,
  /** The instance is shutting down. */
  goingAway: 1001,
  /** A second link to the same peer; the other one is kept. */
  duplicate: 4000,
  /** The accepting instance holds its maximum number of links. */
  full: 4001,
  /** The link leads back to the dialling instance itself. */
  self: 4002,
  /** The peer sent a frame that breaks the protocol. */
  protocolError: 4003,
  /** Nothing arrived within the link timeout. */
  timeout: 4004,
  /** The peer reads too slowly; its send buffer passed the limit. */
  slowConsumer: 4005,
  /** The link was replaced by a link to a random other instance. */
  shuffle: 4006,
  /** The peer did not prove that it holds a fleet key. */
  unauthorized: 4007,
  /** The peer sent more frames per second than allowed. */
  rateLimited: 4008,
  /** The peer sent more invalid frames per minute than allowed. */
  tooManyInvalidFrames: 4009,
} as const;

/** Name of a close reason. */
export type CloseReason = keyof typeof CLOSE_CODES;
