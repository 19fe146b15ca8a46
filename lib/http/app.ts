/**
 * The HTTP API of an instance (Hono): config reads and writes, status,
 * health, the change feed, update tracking, metrics, the dashboard,
 * anti-entropy over HTTP and the `/gossip` WebSocket endpoint.
 *
 * Every error is JSON, `{ "error": { "code", "message" } }`, with a 4xx
 * status for bad input. A request that fails validation stores nothing.
 * GET responses allow any origin (CORS), so that a dashboard served by one
 * instance can read every other; writes do not.
 *
 * Guards (see guards.ts): every request counts against a rate limit per
 * client address. Writes need the admin token when one is set, and reads
 * need a token when `readAccess` is `token`; `/healthz` and the dashboard's
 * static files are always open. `/gossip` and `/v1/sync` take fleet key
 * proofs instead of tokens (see fleet_auth.ts).
 *
 * @module
 */

import { type Context, Hono } from "hono";
import { bodyLimit } from "hono/body-limit";
import { cors } from "hono/cors";
import { z } from "zod";
import type { ChangeFeed } from "../change_feed.ts";
import type { Settings } from "../config.ts";
import type { Logger } from "../log.ts";
import type { Metrics } from "../metrics.ts";
import type { Counters } from "../protocol/counters.ts";
import {
  formatVersion,
  parseVersion,
  type Version,
} from "../protocol/clock.ts";
import {
  checkKey,
  type Entry,
  jsonDepth,
  MAX_VALUE_DEPTH,
} from "../protocol/entry.ts";
import {
  encodeFrame,
  MIN_PROTOCOL_VERSION,
  NODE_ID_PATTERN,
  parseFrame,
  PROTOCOL_VERSION,
  SignatureSchema,
  SyncRequestSchema,
} from "../protocol/messages.ts";
import {
  formatVersionRange,
  negotiateVersion,
  parseVersionRange,
  PROTOCOL_HEADER,
} from "../protocol/versions.ts";
import { type Change, type GossipNode, WriteError } from "../protocol/node.ts";
import type { AcceptOptions } from "../net/link_manager.ts";
import { AUTH_HEADER } from "../security/fleet_auth.ts";
import type { Security } from "../security/setup.ts";
import {
  UpdateIdError,
  type UpdateReport,
  type UpdateTracker,
} from "../update_tracker.ts";
import { dashboardRoutes } from "./dashboard.ts";
import { eventsResponse } from "./events.ts";
import { clientAddress, rateLimit, requireAccess } from "./guards.ts";
import { buildMembers, type StatusReport } from "./status.ts";
import { watchResponse } from "./watch.ts";

/** What the HTTP layer needs from an instance. */
export interface InstanceApi {
  readonly settings: Settings;
  readonly node: GossipNode;
  readonly feed: ChangeFeed;
  readonly log: Logger;
  readonly counters: Counters;
  readonly tracker: UpdateTracker;
  readonly metrics: Metrics;
  /** Aborted when the instance stops; open event streams then end. */
  readonly stopSignal: AbortSignal;
  /** Commits and applies client changes; resolves once they are durable. */
  write(changes: Change[]): Promise<Entry[]>;
  /** Fleet keys, access tokens and publisher keys. */
  readonly security: Security;
  /** Hands an upgraded `/gossip` socket to the link manager. */
  acceptLink(socket: WebSocket, options: AcceptOptions): void;
  /** Open `/gossip` sockets from a remote address. */
  socketsFrom(address: string): number;
  status(): StatusReport;
  /** Reports one update on this instance. @throws {UpdateIdError} */
  updateReport(id: string): UpdateReport;
}

/** Error codes of the HTTP API. */
export type ErrorCode =
  | "invalid_json"
  | "invalid_key"
  | "invalid_value"
  | "value_too_large"
  | "invalid_request"
  | "invalid_update_id"
  | "body_too_large"
  | "not_found"
  | "upgrade_required"
  | "unauthorized"
  | "too_many_links"
  | "unsupported_protocol"
  | "invalid_signature"
  | "future_version"
  | "stale_version"
  | "unsigned"
  | "bad_signature"
  | "internal";

/** Returns the JSON error response used throughout the API. */
export function errorResponse(
  c: Context,
  status: 400 | 401 | 403 | 404 | 409 | 413 | 426 | 429 | 500 | 503,
  code: ErrorCode,
  message: string,
): Response {
  return c.json({ error: { code, message } }, status);
}

/** A publisher's version and signature of one change. */
const SignedSchema = z.strictObject({ version: z.string(), sig: z.string() });

const BatchSchema = z.strictObject({
  set: z.record(z.string(), z.unknown()).optional(),
  delete: z.array(z.string()).optional(),
  /** Versions and signatures by key, for signed updates. */
  signed: z.record(z.string(), SignedSchema).optional(),
});

/** Request headers of a signed PUT or DELETE. */
export const VERSION_HEADER = "grapevine-version";
export const SIGNATURE_HEADER = "grapevine-signature";

const SyncBodySchema = z.strictObject({
  // The body keeps the version 1 layout in every version.
  v: z.int().min(MIN_PROTOCOL_VERSION).max(PROTOCOL_VERSION),
  from: z.string().max(64),
  body: SyncRequestSchema,
});

/** Returns an entry as the API shows it. */
export function entryView(entry: Entry) {
  return {
    key: entry.key,
    value: entry.value === null ? null : JSON.parse(entry.value),
    version: formatVersion(entry.version),
    updated_at: new Date(entry.version[0]).toISOString(),
  };
}

/**
 * Builds the Hono app of an instance.
 *
 * @example
 * ```ts ignore
 * import { createApp } from "./app.ts";
 * Deno.serve({ port: 8001 }, createApp(instance).fetch);
 * ```
 */
export function createApp(instance: InstanceApi): Hono {
  const app = new Hono();
  const { settings } = instance;
  const limit = bodyLimit({
    maxSize: settings.maxFrameBytes,
    onError: (c) =>
      errorResponse(
        c,
        413,
        "body_too_large",
        `Request body is over the limit of ${settings.maxFrameBytes} bytes`,
      ),
  });

  app.use("*", rateLimit(instance));

  // GET only: a page of another origin may read but not write.
  const allowOrigin = cors({ origin: "*", allowMethods: ["GET", "HEAD"] });
  app.use("*", (c, next) => {
    const method = c.req.method;
    return method === "GET" || method === "HEAD" || method === "OPTIONS"
      ? allowOrigin(c, next)
      : next();
  });

  dashboardRoutes(app);

  const read = requireAccess(instance, "read");
  const write = requireAccess(instance, "write");

  app.get("/", (c) =>
    c.json({
      name: "grapevine",
      id: instance.node.id,
      endpoints: [
        "GET / (dashboard, for browsers)",
        "GET /healthz",
        "GET /metrics",
        "GET /v1/status",
        "GET /v1/members",
        "GET /dashboard",
        "GET /v1/config?prefix=",
        "POST /v1/config",
        "GET|PUT|DELETE /v1/config/:key",
        "GET /v1/watch?prefix=",
        "GET /v1/updates/:key@:version",
        "GET /v1/events",
        "POST /v1/sync",
        "GET /gossip (WebSocket)",
      ],
    }));

  app.get("/healthz", (c) => c.json({ ok: true, id: instance.node.id }));

  app.get("/v1/status", read, (c) => c.json(instance.status()));

  app.get("/v1/members", read, (c) => c.json(buildMembers(instance.node)));

  app.get("/metrics", read, async (c) => {
    const text = await instance.metrics.text();
    return c.body(text, 200, { "content-type": instance.metrics.contentType });
  });

  app.get("/v1/updates/:id{.+}", read, (c) => {
    try {
      return c.json(instance.updateReport(c.req.param("id")));
    } catch (error) {
      if (error instanceof UpdateIdError) {
        return errorResponse(c, 400, "invalid_update_id", error.message);
      }
      throw error;
    }
  });

  app.get("/v1/events", read, (c) => eventsResponse(c, instance));

  app.get("/v1/config", read, (c) => {
    const prefix = c.req.query("prefix") ?? "";
    const entries = [...instance.node.replica.entries()]
      .filter((entry) => entry.value !== null && entry.key.startsWith(prefix))
      .sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0))
      .map(entryView);
    return c.json({ count: entries.length, entries });
  });

  app.post("/v1/config", write, limit, async (c) => {
    const body = await readJson(c);
    if (!body.ok) return body.response;
    const parsed = BatchSchema.safeParse(body.value);
    if (!parsed.success) {
      return errorResponse(
        c,
        400,
        "invalid_request",
        'Body must be {"set": {KEY: VALUE, ...}, "delete": [KEY, ...]}',
      );
    }
    // Parsing into a plain object drops a "__proto__" key silently, so the
    // keys come from the request body itself.
    const rawSet = (body.value as { set?: Record<string, unknown> }).set ?? {};
    const changes: Change[] = [];
    for (const key of Object.keys(rawSet)) {
      const value = rawSet[key];
      if (value === undefined) continue;
      changes.push({ key, value: JSON.stringify(value) });
    }
    const setKeys = new Set(changes.map((change) => change.key));
    for (const key of parsed.data.delete ?? []) {
      if (setKeys.has(key)) {
        return errorResponse(
          c,
          400,
          "invalid_request",
          `Key ${key} is both set and deleted in one batch; keep one of the two`,
        );
      }
      changes.push({ key, value: null });
    }
    const signed = parsed.data.signed ?? {};
    for (const [index, change] of changes.entries()) {
      const given = Object.hasOwn(signed, change.key)
        ? signed[change.key]
        : undefined;
      if (!given) continue;
      const signature = readSignature(given.version, given.sig);
      if (!signature.ok) {
        return errorResponse(c, 400, "invalid_signature", signature.message);
      }
      changes[index] = { ...change, ...signature.value };
    }
    if (changes.length > settings.maxBatchEntries) {
      return errorResponse(
        c,
        413,
        "body_too_large",
        `Batch has ${changes.length} changes, more than the maximum of ${settings.maxBatchEntries}; split it`,
      );
    }
    return await applyChanges(c, instance, changes, (entries) => ({
      count: entries.length,
      versions: Object.fromEntries(
        entries.map((entry) => [entry.key, formatVersion(entry.version)]),
      ),
    }));
  });

  app.get("/v1/config/:key{.+}", read, (c) => {
    const key = c.req.param("key");
    const problem = checkKey(key, settings);
    if (problem) return errorResponse(c, 400, "invalid_key", problem);
    const entry = instance.node.get(key);
    if (!entry) {
      return errorResponse(c, 404, "not_found", `Key ${key} not found`);
    }
    if (entry.value === null) {
      return errorResponse(
        c,
        404,
        "not_found",
        `Key ${key} not found: it was deleted at version ${
          formatVersion(entry.version)
        }`,
      );
    }
    return c.json(entryView(entry));
  });

  app.put("/v1/config/:key{.+}", write, limit, async (c) => {
    const key = c.req.param("key");
    const problem = checkKey(key, settings);
    if (problem) return errorResponse(c, 400, "invalid_key", problem);
    const signature = signatureHeaders(c);
    if (!signature.ok) {
      return errorResponse(c, 400, "invalid_signature", signature.message);
    }
    const body = await readJson(c);
    if (!body.ok) return body.response;
    const change = {
      key,
      value: JSON.stringify(body.value),
      ...signature.value,
    };
    return await applyChanges(c, instance, [change], ([entry]) => ({
      key,
      version: formatVersion(entry!.version),
    }));
  });

  app.delete("/v1/config/:key{.+}", write, async (c) => {
    const key = c.req.param("key");
    const problem = checkKey(key, settings);
    if (problem) return errorResponse(c, 400, "invalid_key", problem);
    const signature = signatureHeaders(c);
    if (!signature.ok) {
      return errorResponse(c, 400, "invalid_signature", signature.message);
    }
    const existed = instance.node.get(key)?.value != null;
    return await applyChanges(
      c,
      instance,
      [{ key, value: null, ...signature.value }],
      ([entry]) => ({
        key,
        version: formatVersion(entry!.version),
        deleted: true,
        existed,
      }),
    );
  });

  app.get(
    "/v1/watch",
    read,
    (c) => watchResponse(c, instance.feed, instance.node.id),
  );

  app.post("/v1/probe", limit, async (c) => {
    const text = await c.req.text();
    const { auth } = instance.security;
    const proof = auth.enabled
      ? auth.checkDial(c.req.header(AUTH_HEADER), "probe", text)
      : undefined;
    if (proof && !proof.ok) {
      return peerRejected(c, instance, "probe", proof.reason);
    }
    const parsed = parseFrame(
      text,
      settings.maxFrameBytes,
      settings.maxProtocolVersion,
    );
    if (!parsed.ok) {
      return errorResponse(c, 400, "invalid_request", parsed.message);
    }
    const frame = parsed.frame;
    if (frame.type !== "probe" && frame.type !== "probe_ack") {
      return errorResponse(
        c,
        400,
        "invalid_request",
        `POST /v1/probe takes probe and probe_ack frames, not ${frame.type}`,
      );
    }
    const answer = instance.node.handleDatagram(frame);
    if (!answer) return c.body(null, 204);
    const reply = encodeFrame(answer, frame.v);
    if (proof?.ok) {
      c.header(AUTH_HEADER, auth.responseHeader(proof.key, proof.nonce, reply));
    }
    return c.body(reply, 200, { "content-type": "application/json" });
  });

  app.post("/v1/sync", limit, async (c) => {
    const text = await c.req.text();
    const { auth, verifier } = instance.security;
    const proof = auth.enabled
      ? auth.checkDial(c.req.header(AUTH_HEADER), "sync", text)
      : undefined;
    if (proof && !proof.ok) {
      return peerRejected(c, instance, "sync", proof.reason);
    }
    const body = parseJson(c, text);
    if (!body.ok) return body.response;
    const parsed = SyncBodySchema.safeParse(body.value);
    if (!parsed.success) {
      const issue = parsed.error.issues[0];
      return errorResponse(
        c,
        400,
        "invalid_request",
        `Invalid sync request at ${
          issue?.path.join(".") || "body"
        }: ${issue?.message}`,
      );
    }
    await verifier?.admit(parsed.data.body.push);
    const response = instance.node.handleSyncRequest(
      parsed.data.body,
      parsed.data.from,
    );
    const answer = JSON.stringify(response);
    if (proof?.ok) {
      c.header(
        AUTH_HEADER,
        auth.responseHeader(proof.key, proof.nonce, answer),
      );
    }
    instance.counters.inc(
      "sync_bytes",
      { direction: "in", via: "http" },
      body.size,
    );
    instance.counters.inc(
      "sync_bytes",
      { direction: "out", via: "http" },
      answer.length,
    );
    return c.body(answer, 200, { "content-type": "application/json" });
  });

  app.get("/gossip", (c) => {
    if (c.req.header("upgrade")?.toLowerCase() !== "websocket") {
      return errorResponse(
        c,
        426,
        "upgrade_required",
        "/gossip takes WebSocket connections only",
      );
    }
    const { auth } = instance.security;
    const proof = auth.enabled
      ? auth.checkDial(c.req.header(AUTH_HEADER), "gossip")
      : undefined;
    if (proof && !proof.ok) {
      return peerRejected(c, instance, "gossip", proof.reason);
    }
    const address = clientAddress(c, settings);
    if (instance.socketsFrom(address) >= settings.maxLinksPerAddress) {
      instance.counters.inc("requests_rejected", { reason: "too_many_links" });
      instance.log.warn("link rejected: too many open links from one address", {
        client: address,
        limit: settings.maxLinksPerAddress,
      });
      return errorResponse(
        c,
        429,
        "too_many_links",
        `This address holds ${settings.maxLinksPerAddress} open links, the maximum`,
      );
    }
    const version = linkVersion(c, instance, address);
    if (typeof version !== "number") return version;
    const { socket, response } = Deno.upgradeWebSocket(c.req.raw, {
      idleTimeout: 0,
    });
    instance.acceptLink(socket, {
      address,
      auth: proof?.ok ? { key: proof.key, nonce: proof.nonce } : undefined,
      version,
    });
    return response;
  });

  app.notFound((c) =>
    errorResponse(
      c,
      404,
      "not_found",
      `No route for ${c.req.method} ${new URL(c.req.url).pathname}`,
    )
  );

  app.onError((error, c) => {
    instance.log.error("request failed", {
      method: c.req.method,
      path: new URL(c.req.url).pathname,
      error,
    });
    return errorResponse(
      c,
      500,
      "internal",
      "Internal error; see the instance log",
    );
  });

  return app;
}

/**
 * Returns the protocol version of a link that a dialler requests, from its
 * range in the protocol header (see protocol/versions.ts), or the HTTP 400
 * response when the header is invalid or no version is in both ranges.
 */
function linkVersion(
  c: Context,
  instance: InstanceApi,
  address: string,
): number | Response {
  const header = c.req.header(PROTOCOL_HEADER);
  const peer = parseVersionRange(header);
  const own = {
    min: MIN_PROTOCOL_VERSION,
    max: instance.settings.maxProtocolVersion,
  };
  const version = peer && negotiateVersion(own, peer);
  if (version !== undefined) return version;
  const message = peer
    ? `No protocol version in common: this instance speaks ${
      formatVersionRange(own)
    }, the dialler ${formatVersionRange(peer)}`
    : `Invalid ${PROTOCOL_HEADER} header ${
      JSON.stringify(header?.slice(0, 40))
    }: expected MIN-MAX, such as 1-2`;
  instance.counters.inc("requests_rejected", {
    reason: "unsupported_protocol",
  });
  instance.log.warn("link rejected: unsupported protocol version", {
    client: address,
    detail: message,
  });
  return errorResponse(c, 400, "unsupported_protocol", message);
}

/**
 * Responds to a peer request whose fleet key proof failed: HTTP 401 with no
 * detail for the client, and the reason in the log and the counters.
 */
function peerRejected(
  c: Context,
  instance: InstanceApi,
  endpoint: "gossip" | "sync" | "probe",
  reason: string,
): Response {
  instance.counters.inc("auth_failures", { endpoint, reason });
  instance.log.warn("peer request rejected: fleet key proof failed", {
    endpoint,
    reason,
    client: clientAddress(c, instance.settings),
  });
  return errorResponse(
    c,
    401,
    "unauthorized",
    "Fleet authentication failed",
  );
}

type Parsed<T> = { ok: true; value: T } | { ok: false; message: string };

/** Reads a publisher's version and signature. */
function readSignature(
  versionText: string,
  sig: string,
): Parsed<{ version: Version; sig: string }> {
  const version = parseVersion(versionText);
  if (!version || !NODE_ID_PATTERN.test(version[2])) {
    return {
      ok: false,
      message: `Version ${
        JSON.stringify(versionText.slice(0, 80))
      } is invalid; expected WALL.COUNTER.NODE as the publisher stamped it`,
    };
  }
  if (!SignatureSchema.safeParse(sig).success) {
    return {
      ok: false,
      message:
        "Signature is invalid; expected 64 bytes of Ed25519 signature in base64url",
    };
  }
  return { ok: true, value: { version, sig } };
}

/** Reads the optional version and signature headers of a PUT or DELETE. */
function signatureHeaders(
  c: Context,
): Parsed<{ version: Version; sig: string } | Record<string, never>> {
  const version = c.req.header(VERSION_HEADER);
  const sig = c.req.header(SIGNATURE_HEADER);
  if (version === undefined && sig === undefined) {
    return { ok: true, value: {} };
  }
  if (version === undefined || sig === undefined) {
    return {
      ok: false,
      message:
        `A signed write needs both the ${VERSION_HEADER} and the ${SIGNATURE_HEADER} header`,
    };
  }
  return readSignature(version, sig);
}

async function readJson(
  c: Context,
): Promise<
  { ok: true; value: unknown; size: number } | {
    ok: false;
    response: Response;
  }
> {
  return parseJson(c, await c.req.text());
}

function parseJson(
  c: Context,
  text: string,
):
  | { ok: true; value: unknown; size: number }
  | { ok: false; response: Response } {
  if (text.trim() === "") {
    return {
      ok: false,
      response: errorResponse(
        c,
        400,
        "invalid_json",
        "Request body is empty; send JSON",
      ),
    };
  }
  // A batch body wraps each value in two more levels.
  const depth = jsonDepth(text);
  if (depth > MAX_VALUE_DEPTH + 2) {
    return {
      ok: false,
      response: errorResponse(
        c,
        400,
        "invalid_value",
        `Request body nests arrays and objects ${depth} levels deep; a value may nest at most ${MAX_VALUE_DEPTH}`,
      ),
    };
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    return {
      ok: false,
      response: errorResponse(
        c,
        400,
        "invalid_json",
        `Request body is not valid JSON: ${(error as Error).message}`,
      ),
    };
  }
  if (hasNonFiniteNumber(value)) {
    return {
      ok: false,
      response: errorResponse(
        c,
        400,
        "invalid_value",
        "Request body has a number too large for a double, such as 1e400, which JSON would store as null; send it as a string",
      ),
    };
  }
  return { ok: true, value, size: text.length };
}

/** Returns whether parsed JSON contains Infinity, which JSON text cannot carry. */
function hasNonFiniteNumber(value: unknown): boolean {
  if (typeof value === "number") return !Number.isFinite(value);
  if (typeof value !== "object" || value === null) return false;
  return Object.values(value).some(hasNonFiniteNumber);
}

async function applyChanges<T>(
  c: Context,
  instance: InstanceApi,
  changes: Change[],
  view: (entries: Entry[]) => T,
): Promise<Response> {
  try {
    const entries = await instance.write(changes);
    return c.json(view(entries));
  } catch (error) {
    if (error instanceof WriteError) {
      return errorResponse(
        c,
        WRITE_ERROR_STATUS[error.code] ?? 400,
        error.code,
        error.message,
      );
    }
    throw error;
  }
}

/** HTTP status of each write error that is not a plain 400. */
const WRITE_ERROR_STATUS: Partial<
  Record<WriteError["code"], 403 | 409 | 413>
> = {
  value_too_large: 413,
  stale_version: 409,
  unsigned: 403,
  bad_signature: 403,
};
