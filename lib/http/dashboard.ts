/**
 * The dashboard: a static page with its script and style sheet, served by
 * every instance at `/dashboard` and, to browsers (requests that accept
 * `text/html`), at `/`.
 * The files are plain HTML, JavaScript and CSS under `dashboard/`, read
 * once when the app is built; there is no build step.
 *
 * @module
 */

import type { Context, Hono } from "hono";

const FILES: Record<string, { name: string; type: string }> = {
  "/": { name: "index.html", type: "text/html; charset=utf-8" },
  "/dashboard": { name: "index.html", type: "text/html; charset=utf-8" },
  "/dashboard/app.js": {
    name: "app.js",
    type: "text/javascript; charset=utf-8",
  },
  "/dashboard/style.css": {
    name: "style.css",
    type: "text/css; charset=utf-8",
  },
};

/** Returns whether a request prefers HTML, as a browser navigating to a page does. */
export function wantsHtml(c: Context): boolean {
  return (c.req.header("accept") ?? "").includes("text/html");
}

/** Adds the dashboard's routes; `/` serves the page only to browsers. */
export function dashboardRoutes(app: Hono): void {
  for (const [path, file] of Object.entries(FILES)) {
    const body = Deno.readTextFileSync(
      new URL(`./dashboard/${file.name}`, import.meta.url),
    );
    app.get(path, (c, next) => {
      if (path === "/" && !wantsHtml(c)) return next();
      return c.body(body, 200, {
        "content-type": file.type,
        "cache-control": "no-cache",
      });
    });
  }
}
