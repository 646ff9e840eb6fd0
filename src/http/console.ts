// The operator console: a static single-page app (src/console/static) served at /console by the
// service itself. The files are read once at start; only those names are served (no path from the
// request ever reaches the file system). The page signs in with an operator key, keeps only the
// short-lived operator JWT in sessionStorage and calls the same API as everyone else.
import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import type { App } from "./types.js";

const STATIC_DIR = fileURLToPath(new URL("../console/static/", import.meta.url));

const TYPES: Record<string, string> = {
  ".html": "text/html; charset=utf-8",
  ".js": "text/javascript; charset=utf-8",
  ".css": "text/css; charset=utf-8",
  ".svg": "image/svg+xml",
};

/**
 * Strict: scripts and styles from this origin only (no inline script, no eval), API calls to this
 * origin only, no frames, no forms posted elsewhere, no plugins.
 */
export const CONSOLE_CSP = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' data:",
  "connect-src 'self'",
  "font-src 'none'",
  "base-uri 'none'",
  "form-action 'self'",
  "frame-ancestors 'none'",
  "object-src 'none'",
].join("; ");

const HEADERS = {
  "content-security-policy": CONSOLE_CSP,
  "x-content-type-options": "nosniff",
  "referrer-policy": "no-referrer",
  "x-frame-options": "DENY",
  "cross-origin-opener-policy": "same-origin",
  "cross-origin-resource-policy": "same-origin",
  "cache-control": "no-store",
};

export async function consoleRoutes(app: App, opts: { dir?: string } = {}): Promise<void> {
  const dir = opts.dir ?? STATIC_DIR;
  const files = new Map<string, { body: Buffer; type: string }>();
  for (const name of fs.readdirSync(dir)) {
    const type = TYPES[path.extname(name)];
    if (type) files.set(name, { body: fs.readFileSync(path.join(dir, name)), type });
  }
  const index = files.get("index.html");
  if (!index) throw new Error(`console: no index.html in ${dir}`);
  const cfg = { config: { public: true }, schema: { hide: true } } as const;

  app.get("/console", cfg, async (_req, reply) => reply.redirect("/console/", 302));
  app.get("/console/", cfg, async (_req, reply) => reply.headers(HEADERS).type(index.type).send(index.body));
  app.get<{ Params: { file: string } }>("/console/:file", cfg, async (req, reply) => {
    const f = files.get(req.params.file);
    if (!f || req.params.file === "index.html") return reply.headers(HEADERS).code(404).type("text/plain; charset=utf-8").send("Not found");
    return reply.headers(HEADERS).type(f.type).send(f.body);
  });
}
