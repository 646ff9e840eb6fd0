// The CLI's client for a running service: bearer operator key, JSON in and out, RFC 7807 errors
// turned into one readable line. The key is sent only in the Authorization header, never printed.
import { CommandFailed, UsageError } from "./args.js";

export interface ApiOptions {
  url: string;
  key?: string;
}

export class ApiClient {
  private readonly base: string;

  constructor(private readonly opts: ApiOptions) {
    let u: URL;
    try {
      u = new URL(opts.url);
    } catch {
      throw new UsageError(`--url: not a URL`);
    }
    if (u.protocol !== "http:" && u.protocol !== "https:") throw new UsageError("--url must be http(s)");
    this.base = u.toString().replace(/\/+$/, "");
  }

  private headers(json: boolean): Record<string, string> {
    if (!this.opts.key) {
      throw new UsageError("an operator key is needed: set INTENTS_OPERATOR_KEY (or ADMIN_API_KEY), or pass --key");
    }
    return { authorization: `Bearer ${this.opts.key}`, ...(json ? { "content-type": "application/json" } : {}) };
  }

  /** A raw response (for streaming); throws CommandFailed on a non-2xx status. */
  async fetch(method: string, path: string, body?: unknown, opts: { timeoutMs?: number } = {}): Promise<Response> {
    const headers = this.headers(body !== undefined);
    let res: Response;
    try {
      res = await fetch(this.base + path, {
        method,
        headers,
        body: body === undefined ? undefined : JSON.stringify(body),
        signal: opts.timeoutMs ? AbortSignal.timeout(opts.timeoutMs) : undefined,
      });
    } catch (err) {
      const c = (err as { cause?: { code?: string; message?: string } }).cause;
      const cause = c?.code ?? c?.message ?? (err as Error).name;
      throw new CommandFailed(`cannot reach the service at ${this.base} (${cause}); is it running? (--url, INTENTS_URL)`);
    }
    if (!res.ok) {
      const text = await res.text().catch(() => "");
      let detail = text.slice(0, 500);
      try {
        const p = JSON.parse(text) as { detail?: string; errors?: Array<{ field: string; message: string }> };
        detail = p.detail ?? detail;
        if (p.errors?.length) detail += ` (${p.errors.map((e) => `${e.field}: ${e.message}`).join("; ")})`;
      } catch {
        /* not JSON */
      }
      throw new CommandFailed(`${method} ${path}: ${res.status} ${detail}`);
    }
    return res;
  }

  async json<T = unknown>(method: string, path: string, body?: unknown): Promise<T> {
    const res = await this.fetch(method, path, body, { timeoutMs: 60_000 });
    const text = await res.text();
    return (text ? JSON.parse(text) : undefined) as T;
  }
}

/** Query string from the defined entries only. */
export function query(params: Record<string, string | number | boolean | undefined>): string {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== false) q.set(k, String(v));
  const s = q.toString();
  return s ? `?${s}` : "";
}
