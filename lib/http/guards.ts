/**
 * Hono middleware that guards the HTTP API: a rate limit per client
 * address, and bearer tokens for reads and writes.
 *
 * Rejections are counted as `requests_rejected{reason}` and logged without
 * the token; the logger rate-limits repeats.
 *
 * @module
 */

import type { Context, MiddlewareHandler } from "hono";
import type { Settings } from "../config.ts";
import type { Logger } from "../log.ts";
import type { Counters } from "../protocol/counters.ts";
import { AddressRateLimiter } from "../security/rate_limit.ts";
import type { Access, AccessTokens } from "../security/tokens.ts";

/** Parts of an instance that the guards use. */
export interface GuardContext {
  readonly settings: Settings;
  readonly log: Logger;
  readonly counters: Counters;
  readonly security: { readonly tokens: AccessTokens };
}

/** Connection info that the server passes to `app.fetch` as its env. */
interface ServerEnv {
  readonly remoteAddr?: { readonly hostname?: string };
}

/**
 * Returns the client's address: the first address of the
 * `clientIpHeader` header when that setting names one (behind a trusted
 * proxy), else the TCP peer's address.
 */
export function clientAddress(c: Context, settings: Settings): string {
  if (settings.clientIpHeader) {
    const forwarded = c.req.header(settings.clientIpHeader);
    const first = forwarded?.split(",")[0]?.trim();
    if (first) return first;
  }
  const env = c.env as ServerEnv | undefined;
  return env?.remoteAddr?.hostname ?? "unknown";
}

function reject(
  c: Context,
  guard: GuardContext,
  status: 401 | 403 | 429,
  code: string,
  message: string,
): Response {
  guard.counters.inc("requests_rejected", { reason: code });
  guard.log.warn("request rejected", {
    reason: code,
    method: c.req.method,
    path: new URL(c.req.url).pathname,
    client: clientAddress(c, guard.settings),
  });
  return c.json({ error: { code, message } }, status);
}

/**
 * Limits requests per client address to `maxRequestsPerSecond`, with
 * bursts of twice that, and responds with HTTP 429 and `Retry-After` past it.
 */
export function rateLimit(guard: GuardContext): MiddlewareHandler {
  const rate = guard.settings.maxRequestsPerSecond;
  const limiter = new AddressRateLimiter({
    ratePerSecond: rate,
    burst: 2 * rate,
  });
  return async (c, next) => {
    const waitSeconds = limiter.take(clientAddress(c, guard.settings));
    if (waitSeconds > 0) {
      c.header("retry-after", String(waitSeconds));
      return reject(
        c,
        guard,
        429,
        "rate_limited",
        `Too many requests from this address; retry in ${waitSeconds} s`,
      );
    }
    await next();
  };
}

/**
 * Requires a bearer token that allows `access`: the admin token for
 * writes; the read or the admin token for reads when `readAccess` is
 * `token`. Open when no such token is configured.
 */
export function requireAccess(
  guard: GuardContext,
  access: Access,
): MiddlewareHandler {
  return async (c, next) => {
    const result = guard.security.tokens.check(
      c.req.header("authorization"),
      access,
    );
    if (result === "ok") return await next();
    c.header("www-authenticate", 'Bearer realm="grapevine"');
    const variable = access === "write"
      ? "GRAPEVINE_ADMIN_TOKEN"
      : "GRAPEVINE_ADMIN_TOKEN or GRAPEVINE_READ_TOKEN";
    switch (result) {
      case "missing":
        return reject(
          c,
          guard,
          401,
          "unauthorized",
          `This request needs a bearer token (Authorization: Bearer TOKEN); the CLI reads it from ${variable} or --token-file`,
        );
      case "invalid":
        return reject(
          c,
          guard,
          401,
          "unauthorized",
          "The bearer token is not valid for this instance",
        );
      case "forbidden":
        return reject(
          c,
          guard,
          403,
          "forbidden",
          "The read token cannot write; use the admin token",
        );
    }
  };
}
