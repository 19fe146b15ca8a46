/**
 * Every setting of a Grapevine instance, with its meaning, unit and default.
 *
 * Each setting is defined once in {@link SETTINGS}; the zod schema, the
 * `serve` command-line flags (`--gossip-interval-ms`), the environment
 * variables (`GRAPEVINE_GOSSIP_INTERVAL_MS`) and the README table all come
 * from that table. Presets change a few timing values from the LAN base for
 * one machine (`local`) or for links between continents (`wan`).
 *
 * @module
 */

import { z } from "zod";
import {
  MIN_PROTOCOL_VERSION,
  NODE_ID_PATTERN,
  PROTOCOL_VERSION,
} from "./protocol/messages.ts";
import type { SyncDirection } from "./protocol/sync.ts";

type Kind = "string" | "int" | "number" | "list" | "enum";

interface SettingSpec {
  readonly kind: Kind;
  readonly help: string;
  readonly default: string | number | readonly string[] | undefined;
  readonly min?: number;
  readonly max?: number;
  readonly choices?: readonly string[];
}

const SECOND = 1000;
const DAY = 24 * 3600 * SECOND;

/**
 * The settings table. Defaults are the `lan` preset; see {@link PRESETS} for
 * the others.
 */
export const SETTINGS = {
  id: {
    kind: "string",
    default: undefined,
    help:
      "Instance id, unique in the fleet (letters, digits, _ . -). Default: the id stored in the KV file, or a new random one",
  },
  region: {
    kind: "string",
    default: "local",
    help: "Region name, used to group instances",
  },
  host: {
    kind: "string",
    default: "127.0.0.1",
    help: "Address to listen on",
  },
  port: {
    kind: "int",
    default: 8000,
    min: 0,
    max: 65535,
    help: "TCP port to listen on; 0 picks a free port",
  },
  advertiseUrl: {
    kind: "string",
    default: "",
    help:
      "Base URL other instances dial to reach this one. Default: http://HOST:PORT. Set it to 'none' for an instance that cannot be dialled",
  },
  kvPath: {
    kind: "string",
    default: "",
    help: "Path of the Deno KV file. Default: .grapevine/ID.kv",
  },
  seeds: {
    kind: "list",
    default: [],
    help:
      "Comma-separated base URLs of instances to join through, such as http://127.0.0.1:8001",
  },
  preset: {
    kind: "enum",
    default: "lan",
    choices: ["local", "lan", "wan"],
    help:
      "Timing preset: local (one machine), lan (one data centre), wan (edge regions)",
  },
  fanout: {
    kind: "int",
    default: 3,
    min: 1,
    max: 32,
    help: "Peers a rumor is pushed to in one gossip round",
  },
  retransmitMult: {
    kind: "int",
    default: 4,
    min: 1,
    max: 64,
    help:
      "A rumor is pushed at most this many times ceil(log10(members + 1)) before it is removed, unless rumorShareLimit is set",
  },
  feedbackLimit: {
    kind: "int",
    default: 3,
    min: 1,
    max: 1000,
    help:
      "A rumor is removed once this many peers answered that they already had it",
  },
  dissemination: {
    kind: "enum",
    default: "tree",
    choices: ["tree", "random", "flood"],
    help:
      "How rumors pick peers: tree pushes on eager links and prunes links that bring duplicates (Plumtree); random pushes to fanout random links per round (Demers); flood pushes to every link",
  },
  lazyPushIntervalMs: {
    kind: "int",
    default: SECOND,
    min: 10,
    max: 600 * SECOND,
    help:
      "With tree dissemination, milliseconds between announcements of recent updates to lazyPushFanout pruned links, which pull what they lack",
  },
  lazyPushFanout: {
    kind: "int",
    default: 1,
    min: 1,
    max: 32,
    help:
      "Pruned links that receive each lazy announcement; more repair a cut tree sooner but cost more frames per update",
  },
  rumorShareLimit: {
    kind: "int",
    default: 0,
    min: 0,
    max: 1_000_000,
    help:
      "Fixed number of pushes after which a rumor is removed; 0 computes it from retransmitMult and the fleet size",
  },
  rumorFirstPush: {
    kind: "enum",
    default: "at_once",
    choices: ["at_once", "next_round"],
    help:
      "When a new update is first pushed: at once, or at the next gossip round as in the synchronous rounds of the epidemic literature",
  },
  gossipIntervalMs: {
    kind: "int",
    default: 200,
    min: 10,
    max: 60 * SECOND,
    help:
      "Milliseconds between gossip rounds that push rumors still infective; new rumors are pushed at once unless rumorFirstPush is next_round",
  },
  maxRumors: {
    kind: "int",
    default: 10_000,
    min: 1,
    max: 1_000_000,
    help:
      "Rumors held at once; past it the most shared is dropped and left to anti-entropy",
  },
  maxMembers: {
    kind: "int",
    default: 10_000,
    min: 2,
    max: 1_000_000,
    help:
      "Members the member table holds; news of further members is dropped and counted",
  },
  activeViewSize: {
    kind: "int",
    default: 0,
    min: 0,
    max: 64,
    help:
      "WebSocket links an instance dials and keeps open; 0 picks ceil(ln N) + 2 for N members (4 at 5, 5 at 20, 9 at 1000)",
  },
  regionAwareness: {
    kind: "enum",
    default: "on",
    choices: ["on", "off"],
    help:
      "on: keep crossRegionLinks links to other regions and the rest in the own region, and sync mostly within the region; off: pick peers regardless of region",
  },
  crossRegionLinks: {
    kind: "int",
    default: 2,
    min: 1,
    max: 64,
    help:
      "Links to instances of other regions, with region awareness on; more links cost more cross-region traffic but survive more failures",
  },
  remoteSyncEvery: {
    kind: "int",
    default: 4,
    min: 1,
    max: 1000,
    help:
      "With region awareness on, every this many anti-entropy rounds pairs with another region; the others stay in the region",
  },
  passiveViewSize: {
    kind: "int",
    default: 30,
    min: 1,
    max: 10_000,
    help:
      "Members kept as a random sample to replace failed links from, refreshed by shuffles",
  },
  maxLinks: {
    kind: "int",
    default: 16,
    min: 1,
    max: 1024,
    help:
      "Links an instance holds in all, inbound included; further inbound links are turned away",
  },
  shuffleIntervalMs: {
    kind: "int",
    default: 30 * SECOND,
    min: 100,
    max: DAY,
    help:
      "Milliseconds between reshuffles, each of which replaces one dialled link with a link to a random other instance",
  },
  keepaliveIntervalMs: {
    kind: "int",
    default: 2 * SECOND,
    min: 50,
    max: 600 * SECOND,
    help: "Milliseconds between keepalive pings on an idle link",
  },
  linkTimeoutMs: {
    kind: "int",
    default: 8 * SECOND,
    min: 100,
    max: 3600 * SECOND,
    help:
      "A link that receives nothing for this many milliseconds is closed and redialled",
  },
  probeIntervalMs: {
    kind: "int",
    default: SECOND,
    min: 50,
    max: DAY,
    help:
      "Milliseconds between failure-detector probes; each probes one member, round-robin",
  },
  probeTimeoutMs: {
    kind: "int",
    default: 500,
    min: 10,
    max: DAY,
    help:
      "Milliseconds to wait for a probe's answer before asking other members to probe indirectly",
  },
  indirectProbes: {
    kind: "int",
    default: 3,
    min: 0,
    max: 16,
    help: "Members asked to probe a silent member on this one's behalf",
  },
  suspicionMult: {
    kind: "int",
    default: 4,
    min: 1,
    max: 100,
    help:
      "A suspect is declared dead after this many times max(1, log10 N) probe intervals without refuting",
  },
  deadMemberRetentionMs: {
    kind: "int",
    default: 30 * SECOND,
    min: 0,
    max: DAY,
    help:
      "Milliseconds a dead or departed member stays listed before it is forgotten",
  },
  maxAwareness: {
    kind: "int",
    default: 8,
    min: 0,
    max: 64,
    help:
      "Highest local health score; probe intervals and timeouts stretch by score + 1 while this instance is slow",
  },
  redialMinMs: {
    kind: "int",
    default: 250,
    min: 10,
    max: 600 * SECOND,
    help: "First delay before redialling a failed instance, in milliseconds",
  },
  redialMaxMs: {
    kind: "int",
    default: 15 * SECOND,
    min: 10,
    max: 3600 * SECOND,
    help:
      "Largest redial delay in milliseconds; delays double up to it, with jitter",
  },
  antiEntropyIntervalMs: {
    kind: "int",
    default: 5 * SECOND,
    min: 50,
    max: DAY,
    help:
      "Milliseconds between anti-entropy rounds with one random peer, plus or minus the jitter",
  },
  antiEntropyJitter: {
    kind: "number",
    default: 0.25,
    min: 0,
    max: 1,
    help:
      "Fraction of the anti-entropy interval by which each round is moved at random",
  },
  antiEntropyMode: {
    kind: "enum",
    default: "push-pull",
    choices: ["push-pull", "push", "pull"],
    help:
      "Which newer entries an anti-entropy round moves: both sides' (push-pull), only the initiator's (push) or only the responder's (pull)",
  },
  antiEntropyRumorLimit: {
    kind: "int",
    default: 256,
    min: 0,
    max: 1_000_000,
    help:
      "Entries that one anti-entropy session repairs and then spreads as rumors, so that news found after a partition heals travels at rumor speed; 0 turns it off",
  },
  syncTimeoutMs: {
    kind: "int",
    default: 5 * SECOND,
    min: 50,
    max: 600 * SECOND,
    help: "An anti-entropy round not finished in this many milliseconds fails",
  },
  tombstoneTtlMs: {
    kind: "int",
    default: 7 * DAY,
    min: 1000,
    max: 3650 * DAY,
    help:
      "Milliseconds a delete marker is kept; an instance without anti-entropy for longer than this quarantines its older entries until a peer confirms them",
  },
  maxClockDriftMs: {
    kind: "int",
    default: 60 * SECOND,
    min: 0,
    max: DAY,
    help:
      "Remote versions more than this many milliseconds ahead of local time are rejected",
  },
  maxKeyBytes: {
    kind: "int",
    default: 512,
    min: 1,
    max: 1024,
    help: "Largest key, in UTF-8 bytes",
  },
  maxValueBytes: {
    kind: "int",
    default: 60_000,
    min: 1,
    max: 63_000,
    help:
      "Largest value, in bytes of its JSON text; Deno KV holds at most 64 KiB per value",
  },
  maxFrameBytes: {
    kind: "int",
    default: 1024 * 1024,
    min: 65_536,
    max: 64 * 1024 * 1024,
    help: "Largest WebSocket frame or HTTP body accepted, in bytes",
  },
  maxEntriesPerFrame: {
    kind: "int",
    default: 256,
    min: 1,
    max: 4096,
    help: "Most entries carried by one gossip or anti-entropy frame",
  },
  maxBatchEntries: {
    kind: "int",
    default: 2000,
    min: 1,
    max: 100_000,
    help: "Most keys one batch write over HTTP may set or delete",
  },
  maxFramesPerSecond: {
    kind: "int",
    default: 1000,
    min: 10,
    max: 1_000_000,
    help:
      "Frames one link may receive per second, with bursts of the same size; a link that sends faster is closed",
  },
  rumorBatchMs: {
    kind: "int",
    default: 0,
    min: 0,
    max: 1000,
    help:
      "Milliseconds a link holds outgoing rumor frames to merge them into one; 0 merges only the frames queued by one task, such as the writes of one KV commit, and adds no delay",
  },
  maxInvalidFrames: {
    kind: "int",
    default: 100,
    min: 1,
    max: 1_000_000,
    help:
      "Invalid frames one link may send per minute before it is closed; frames of an unknown type or protocol version are only counted",
  },
  maxSendBufferBytes: {
    kind: "int",
    default: 8 * 1024 * 1024,
    min: 65_536,
    max: 1024 * 1024 * 1024,
    help:
      "Bytes queued and unsent on one link; a peer that reads too slowly to stay under it is disconnected",
  },
  maxLinksPerAddress: {
    kind: "int",
    default: 64,
    min: 1,
    max: 10_000,
    help:
      "Open /gossip WebSockets from one remote address, authenticated or not; more are rejected with HTTP 429. Instances behind one NAT or on one machine share an address, so keep it above the instances per address",
  },
  maxRequestsPerSecond: {
    kind: "int",
    default: 200,
    min: 1,
    max: 1_000_000,
    help:
      "HTTP requests per second from one client address, with bursts of twice that; more are rejected with HTTP 429",
  },
  clientIpHeader: {
    kind: "string",
    default: "",
    help:
      "Request header with the client address, such as fly-client-ip, for rate limits behind a trusted proxy. Default: the TCP peer address",
  },
  fleetKeysEnv: {
    kind: "string",
    default: "GRAPEVINE_FLEET_KEYS",
    help:
      "Name of the environment variable with the fleet keys, comma-separated; the first one is used to dial. Unset or empty: the fleet is open to anyone",
  },
  adminTokenEnv: {
    kind: "string",
    default: "GRAPEVINE_ADMIN_TOKEN",
    help:
      "Name of the environment variable with the admin token that writes need; several, comma-separated, during a rotation. Unset or empty: anyone may write",
  },
  readTokenEnv: {
    kind: "string",
    default: "GRAPEVINE_READ_TOKEN",
    help:
      "Name of the environment variable with the read token (or several, comma-separated), accepted for reads when readAccess is token",
  },
  readAccess: {
    kind: "enum",
    default: "open",
    choices: ["open", "token"],
    help:
      "Whether reads (config, status, watch, metrics) are open to anyone or need the read token or the admin token",
  },
  publisherKeys: {
    kind: "list",
    default: [],
    help:
      "Comma-separated Ed25519 public keys (base64url) of the publishers; when set, every update must be signed by one of them",
  },
  tlsCert: {
    kind: "string",
    default: "",
    help:
      "Path of a PEM certificate chain; with tlsKey the instance serves HTTPS and advertises an https:// URL",
  },
  tlsKey: {
    kind: "string",
    default: "",
    help: "Path of the PEM private key of tlsCert",
  },
  tlsCa: {
    kind: "string",
    default: "",
    help:
      "Path of PEM CA certificates trusted, besides the system's, when dialling peers over wss:// and https://",
  },
  maxProtocolVersion: {
    kind: "int",
    default: PROTOCOL_VERSION,
    min: MIN_PROTOCOL_VERSION,
    max: PROTOCOL_VERSION,
    help:
      "Newest protocol version this instance speaks on links; 1 makes it send and accept only what builds of version 1 do, to upgrade binaries first and the protocol later",
  },
  logLevel: {
    kind: "enum",
    default: "info",
    choices: ["debug", "info", "warn", "error"],
    help: "Lowest level of log lines written",
  },
  logFormat: {
    kind: "enum",
    default: "json",
    choices: ["json", "text"],
    help: "Log line format: one JSON object per line, or text",
  },
} as const satisfies Record<string, SettingSpec>;

/** Name of a setting. */
export type SettingName = keyof typeof SETTINGS;

/**
 * Timing presets. Each changes a few settings from the `lan` defaults; the
 * comment on each value gives the reason.
 */
export const PRESETS: Record<
  "local" | "lan" | "wan",
  Partial<Record<SettingName, number>>
> = {
  // One machine: loopback round trips are well under a millisecond, so
  // rounds can be short and failures are noticed quickly.
  local: {
    gossipIntervalMs: 100, // memberlist's local preset gossips every 100 ms
    lazyPushIntervalMs: 250, // repairs a broken eager path within a quarter second
    antiEntropyIntervalMs: 2 * SECOND, // cheap on loopback; repairs show fast
    shuffleIntervalMs: 10 * SECOND, // a small fleet reshuffles visibly
    keepaliveIntervalMs: SECOND,
    linkTimeoutMs: 4 * SECOND,
    // memberlist's local preset probes every 1 s with a 200 ms timeout and
    // one indirect probe; a wider timeout here tolerates busy test machines.
    indirectProbes: 1,
    suspicionMult: 3,
  },
  lan: {},
  // Edge regions: round trips of 50 to 300 ms and more packet loss, so
  // rounds are longer and timeouts wider to avoid false failures.
  wan: {
    gossipIntervalMs: 500, // memberlist's WAN preset gossips every 500 ms
    lazyPushIntervalMs: 2500, // a few round trips between continents
    antiEntropyIntervalMs: 15 * SECOND, // each round costs a few round trips
    shuffleIntervalMs: 60 * SECOND,
    keepaliveIntervalMs: 5 * SECOND,
    linkTimeoutMs: 20 * SECOND,
    syncTimeoutMs: 15 * SECOND,
    probeIntervalMs: 5 * SECOND, // memberlist's WAN preset: 5 s and 3 s
    probeTimeoutMs: 3 * SECOND,
    suspicionMult: 6, // memberlist WAN: slower links, fewer false positives
  },
};

function fieldSchema(spec: SettingSpec): z.ZodType {
  switch (spec.kind) {
    case "string":
      return z.string();
    case "int":
      return z.int().min(spec.min ?? 0).max(
        spec.max ?? Number.MAX_SAFE_INTEGER,
      );
    case "number":
      return z.number().min(spec.min ?? 0).max(
        spec.max ?? Number.MAX_SAFE_INTEGER,
      );
    case "list":
      return z.array(z.string());
    case "enum":
      return z.enum(spec.choices as [string, ...string[]]);
  }
}

/** All settings after validation. */
export type Settings = {
  -readonly [K in SettingName]: (typeof SETTINGS)[K]["kind"] extends "list"
    ? string[]
    : (typeof SETTINGS)[K]["kind"] extends "int" | "number" ? number
    : K extends "id" ? string | undefined
    : K extends "preset" ? "local" | "lan" | "wan"
    : K extends "logLevel" ? "debug" | "info" | "warn" | "error"
    : K extends "logFormat" ? "json" | "text"
    : K extends "rumorFirstPush" ? "at_once" | "next_round"
    : K extends "dissemination" ? "tree" | "random" | "flood"
    : K extends "regionAwareness" ? "on" | "off"
    : K extends "antiEntropyMode" ? SyncDirection
    : K extends "readAccess" ? "open" | "token"
    : string;
};

const SettingsSchema = z.object(
  Object.fromEntries(
    Object.entries(SETTINGS).map(([name, spec]) => [
      name,
      name === "id" ? fieldSchema(spec).optional() : fieldSchema(spec),
    ]),
  ),
).superRefine((value, context) => {
  const settings = value as Settings;
  if (settings.id !== undefined && !NODE_ID_PATTERN.test(settings.id)) {
    context.addIssue({
      code: "custom",
      path: ["id"],
      message:
        "must be 1 to 64 letters, digits, _ . or -, starting with a letter or digit",
    });
  }
  if (settings.redialMinMs > settings.redialMaxMs) {
    context.addIssue({
      code: "custom",
      path: ["redialMinMs"],
      message: "must not be greater than redialMaxMs",
    });
  }
  if (settings.probeTimeoutMs >= settings.probeIntervalMs) {
    context.addIssue({
      code: "custom",
      path: ["probeTimeoutMs"],
      message: "must be less than probeIntervalMs",
    });
  }
  if (settings.activeViewSize > settings.maxLinks) {
    context.addIssue({
      code: "custom",
      path: ["activeViewSize"],
      message: "must not be greater than maxLinks",
    });
  }
  if ((settings.tlsCert === "") !== (settings.tlsKey === "")) {
    context.addIssue({
      code: "custom",
      path: [settings.tlsCert === "" ? "tlsCert" : "tlsKey"],
      message: "tlsCert and tlsKey must be set together",
    });
  }
  for (const [index, key] of settings.publisherKeys.entries()) {
    if (!/^[A-Za-z0-9_-]{43}$/.test(key)) {
      context.addIssue({
        code: "custom",
        path: ["publisherKeys", index],
        message:
          "must be an Ed25519 public key: 32 bytes in base64url, 43 characters (main.ts keygen publisher prints one)",
      });
    }
  }
  for (const name of ["fleetKeysEnv", "adminTokenEnv", "readTokenEnv"]) {
    const value = settings[name as "fleetKeysEnv"];
    if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(value)) {
      context.addIssue({
        code: "custom",
        path: [name],
        message:
          "must be the name of an environment variable (letters, digits and _), not the secret itself",
      });
    }
  }
  for (const [index, seed] of settings.seeds.entries()) {
    if (!isHttpUrl(seed)) {
      context.addIssue({
        code: "custom",
        path: ["seeds", index],
        message: `${JSON.stringify(seed)} is not an http:// or https:// URL`,
      });
    }
  }
  if (
    settings.advertiseUrl !== "" && settings.advertiseUrl !== "none" &&
    !isHttpUrl(settings.advertiseUrl)
  ) {
    context.addIssue({
      code: "custom",
      path: ["advertiseUrl"],
      message: "must be an http:// or https:// URL, or 'none'",
    });
  }
});

function isHttpUrl(text: string): boolean {
  try {
    const url = new URL(text);
    return url.protocol === "http:" || url.protocol === "https:";
  } catch {
    return false;
  }
}

/** Raised when settings are invalid; the message names every bad field. */
export class SettingsError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "SettingsError";
  }
}

/** Returns the default settings of a preset. */
export function defaultSettings(
  preset: Settings["preset"] = "lan",
): Settings {
  const settings = Object.fromEntries(
    Object.entries(SETTINGS).map((
      [name, spec],
    ) => [name, structuredClone(spec.default)]),
  ) as unknown as Settings;
  settings.preset = preset;
  Object.assign(settings, PRESETS[preset]);
  return settings;
}

/**
 * Builds settings from the defaults of the chosen preset, overridden by
 * `overrides`, and validates them.
 *
 * @throws {SettingsError} naming each invalid field and what it expects.
 *
 * @example
 * ```ts
 * import { resolveSettings } from "./config.ts";
 * const settings = resolveSettings({ preset: "local", port: 8001 });
 * settings.gossipIntervalMs; // 100
 * ```
 */
export function resolveSettings(overrides: Partial<Settings>): Settings {
  const preset = overrides.preset ?? "lan";
  if (!(preset in PRESETS)) {
    throw new SettingsError(
      `Invalid setting preset: ${
        JSON.stringify(preset)
      }; expected local, lan or wan`,
    );
  }
  const merged = { ...defaultSettings(preset), ...dropUndefined(overrides) };
  const parsed = SettingsSchema.safeParse(merged);
  if (!parsed.success) {
    const lines = parsed.error.issues.map((issue) =>
      `${issue.path.join(".")}: ${issue.message}`
    );
    throw new SettingsError(`Invalid settings:\n  ${lines.join("\n  ")}`);
  }
  return parsed.data as Settings;
}

function dropUndefined<T extends object>(value: T): Partial<T> {
  return Object.fromEntries(
    Object.entries(value).filter(([, item]) => item !== undefined),
  ) as Partial<T>;
}

/** Returns the command-line flag of a setting: `gossipIntervalMs` → `gossip-interval-ms`. */
export function flagName(name: SettingName): string {
  return name.replace(/[A-Z]/g, (letter) => `-${letter.toLowerCase()}`);
}

/** Returns the environment variable of a setting: `GRAPEVINE_GOSSIP_INTERVAL_MS`. */
export function envName(name: SettingName): string {
  return `GRAPEVINE_${flagName(name).replaceAll("-", "_").toUpperCase()}`;
}

/**
 * Converts raw text values (from flags or environment variables) to typed
 * settings overrides.
 *
 * @throws {SettingsError} when a number or list cannot be parsed.
 */
export function parseRawSettings(
  raw: Partial<Record<SettingName, string>>,
  source: (name: SettingName) => string,
): Partial<Settings> {
  const result: Record<string, unknown> = {};
  for (const [name, text] of Object.entries(raw)) {
    if (text === undefined) continue;
    const spec = SETTINGS[name as SettingName] as SettingSpec;
    switch (spec.kind) {
      case "int":
      case "number": {
        const number = Number(text);
        if (text.trim() === "" || !Number.isFinite(number)) {
          throw new SettingsError(
            `Invalid ${source(name as SettingName)}: ${
              JSON.stringify(text)
            } is not a number`,
          );
        }
        result[name] = number;
        break;
      }
      case "list":
        result[name] = text.split(",").map((item) => item.trim()).filter(
          (item) => item !== "",
        );
        break;
      default:
        result[name] = text;
    }
  }
  return result as Partial<Settings>;
}

/** Reads every `GRAPEVINE_*` setting from the environment. */
export function settingsFromEnv(
  env: Record<string, string> = Deno.env.toObject(),
): Partial<Settings> {
  const raw: Partial<Record<SettingName, string>> = {};
  for (const name of Object.keys(SETTINGS) as SettingName[]) {
    const value = env[envName(name)];
    if (value !== undefined) raw[name] = value;
  }
  return parseRawSettings(raw, envName);
}

/**
 * Returns the rumor share limit: `rumorShareLimit` when it is set (above 0),
 * else {@link shareLimit} for a fleet of `members` instances.
 */
export function effectiveShareLimit(
  settings: Pick<Settings, "rumorShareLimit" | "retransmitMult">,
  members: number,
): number {
  if (settings.rumorShareLimit > 0) return settings.rumorShareLimit;
  return shareLimit(settings.retransmitMult, members);
}

/**
 * Returns the rumor share limit for a fleet of `members` instances:
 * `retransmitMult × ceil(log10(members + 1))`, as memberlist computes its
 * retransmit limit. With the default of 4 that is 8 pushes below 100
 * members and 12 below 1000.
 */
export function shareLimit(retransmitMult: number, members: number): number {
  return retransmitMult * Math.max(1, Math.ceil(Math.log10(members + 1)));
}
