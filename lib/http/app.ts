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
import { formatVersion } from "../protocol/clock.ts";
import { checkKey, type Entry } from "../protocol/entry.ts";
import {
  encodeFrame,
  parseFrame,
  PROTOCOL_VERSION,
  SyncRequestSchema,
} from "../protocol/messages.ts";
import { type Change, type GossipNode, WriteError } from "../protocol/node.ts";
import {
  UpdateIdError,
  type UpdateReport,
  type UpdateTracker,
} from "../update_tracker.ts";
import { dashboardRoutes } from "./dashboard.ts";
import { eventsResponse } from "./events.ts";
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
  /** Hands an upgraded `/gossip` socket to the link manager. */
  acceptLink(socket: WebSocket): void;
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
  | "internal";

/** Returns the JSON error response used throughout the API. */
export function errorResponse(
  c: Context,
  status: 400 | 404 | 413 | 426 | 500 | 503,
  code: ErrorCode,
  message: string,
): Response {
  return c.json({ error: { code, message } }, status);
}

const BatchSchema = z.strictObject({
  set: z.record(z.string(), z.unknown()).optional(),
  delete: z.array(z.string()).optional(),
});

const SyncBodySchema = z.strictObject({
  v: z.literal(PROTOCOL_VERSION),
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

  // GET only: a page of another origin may read but not write.
  const allowOrigin = cors({ origin: "*", allowMethods: ["GET", "HEAD"] });
  app.use("*", (c, next) => {
    const method = c.req.method;
    return method === "GET" || method === "HEAD" || method === "OPTIONS"
      ? allowOrigin(c, next)
      : next();
  });

  dashboardRoutes(app);

  app.get("/", (c) =>
    c.json({
      name: "grapevine",
      id: instance.node.id,
      endpoints: [
        "GET / (dashboard, for browsers)",
        "GET /healthz",
        "GET /metrics",
        "GET /v1/status",
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

  app.get("/v1/status", (c) => c.json(instance.status()));

  app.get("/v1/members", (c) => c.json(buildMembers(instance.node)));

  app.get("/metrics", async (c) => {
    const text = await instance.metrics.text();
    return c.body(text, 200, { "content-type": instance.metrics.contentType });
  });

  app.get("/v1/updates/:id{.+}", (c) => {
    try {
      return c.json(instance.updateReport(c.req.param("id")));
    } catch (error) {
      if (error instanceof UpdateIdError) {
        return errorResponse(c, 400, "invalid_update_id", error.message);
      }
      throw error;
    }
  });

  app.get("/v1/events", (c) => eventsResponse(c, instance));

  app.get("/v1/config", (c) => {
    const prefix = c.req.query("prefix") ?? "";
    const entries = [...instance.node.replica.entries()]
      .filter((entry) => entry.value !== null && entry.key.startsWith(prefix))
      .sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0))
      .map(entryView);
    return c.json({ count: entries.length, entries });
  });

  app.post("/v1/config", limit, async (c) => {
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
    const changes: Change[] = [];
    for (const [key, value] of Object.entries(parsed.data.set ?? {})) {
      if (value === undefined) continue;
      changes.push({ key, value: JSON.stringify(value) });
    }
    for (const key of parsed.data.delete ?? []) {
      changes.push({ key, value: null });
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

  app.get("/v1/config/:key{.+}", (c) => {
    const key = c.req.param("key");
    const problem = checkKey(key, settings);
    if (problem) return errorResponse(c, 400, "invalid_key", problem);
    const entry = instance.node.get(key);
    if (!entry || entry.value === null) {
      return errorResponse(c, 404, "not_found", `Key ${key} not found`);
    }
    return c.json(entryView(entry));
  });

  app.put("/v1/config/:key{.+}", limit, async (c) => {
    const key = c.req.param("key");
    const problem = checkKey(key, settings);
    if (problem) return errorResponse(c, 400, "invalid_key", problem);
    const body = await readJson(c);
    if (!body.ok) return body.response;
    const change = { key, value: JSON.stringify(body.value) };
    return await applyChanges(c, instance, [change], ([entry]) => ({
      key,
      version: formatVersion(entry!.version),
    }));
  });

  app.delete("/v1/config/:key{.+}", async (c) => {
    const key = c.req.param("key");
    const problem = checkKey(key, settings);
    if (problem) return errorResponse(c, 400, "invalid_key", problem);
    const existed = instance.node.get(key)?.value != null;
    return await applyChanges(
      c,
      instance,
      [{ key, value: null }],
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
    (c) => watchResponse(c, instance.feed, instance.node.id),
  );

  app.post("/v1/probe", limit, async (c) => {
    const parsed = parseFrame(await c.req.text(), settings.maxFrameBytes);
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
    return c.body(encodeFrame(answer), 200, {
      "content-type": "application/json",
    });
  });

  app.post("/v1/sync", limit, async (c) => {
    const body = await readJson(c);
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
    const response = instance.node.handleSyncRequest(
      parsed.data.body,
      parsed.data.from,
    );
    const text = JSON.stringify(response);
    instance.counters.inc(
      "sync_bytes",
      { direction: "in", via: "http" },
      body.size,
    );
    instance.counters.inc(
      "sync_bytes",
      { direction: "out", via: "http" },
      text.length,
    );
    return c.body(text, 200, { "content-type": "application/json" });
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
    const { socket, response } = Deno.upgradeWebSocket(c.req.raw, {
      idleTimeout: 0,
    });
    instance.acceptLink(socket);
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

async function readJson(
  c: Context,
): Promise<
  { ok: true; value: unknown; size: number } | {
    ok: false;
    response: Response;
  }
> {
  const text = await c.req.text();
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
  try {
    return { ok: true, value: JSON.parse(text), size: text.length };
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
      return error.code === "value_too_large"
        ? errorResponse(c, 413, "value_too_large", error.message)
        : errorResponse(c, 400, error.code, error.message);
    }
    throw error;
  }
}
