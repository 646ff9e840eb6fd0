// Typed errors with stable snake_case codes. The HTTP error handler (src/http/errors.ts) is the one
// place that turns them into RFC 7807 bodies; nothing else formats an error for a client.

export interface GuardrailDetail {
  reason_code: string;
  limit: string | number | string[] | null;
  current: string | number | null;
  attempted: string | number | null;
}

export interface FieldError {
  field: string;
  message: string;
}

export class ServiceError extends Error {
  constructor(
    readonly code: string,
    readonly status: number,
    readonly detail: string,
    readonly opts: {
      transient?: boolean;
      cause?: unknown;
      errors?: FieldError[];
      guardrail?: GuardrailDetail;
      retryAfterSeconds?: number;
      /** Response headers the error needs (e.g. `WWW-Authenticate` on a DPoP failure). */
      headers?: Record<string, string>;
      /** Extra members merged into the problem body (e.g. transaction fields on a 422). */
      extra?: Record<string, unknown>;
    } = {},
  ) {
    super(detail, { cause: opts.cause });
    this.name = "ServiceError";
  }

  get transient(): boolean {
    return this.opts.transient ?? false;
  }
}

export const badRequest = (detail: string, errors?: FieldError[]) =>
  new ServiceError("invalid_request", 400, detail, { errors });
export const unauthorized = (detail = "Missing, invalid, expired or revoked credentials.") =>
  new ServiceError("unauthorized", 401, detail);
export const forbidden = (detail: string, code = "forbidden") => new ServiceError(code, 403, detail);
export const notFound = (detail: string) => new ServiceError("not_found", 404, detail);
export const conflict = (detail: string, code = "conflict") => new ServiceError(code, 409, detail);
export const unprocessable = (detail: string, code = "unprocessable", extra?: Record<string, unknown>) =>
  new ServiceError(code, 422, detail, { extra });
export const unavailable = (detail: string, code = "unavailable", cause?: unknown, retryAfterSeconds = 1) =>
  new ServiceError(code, 503, detail, { transient: true, cause, retryAfterSeconds });
export const badGateway = (detail: string, code = "upstream_error", cause?: unknown) =>
  new ServiceError(code, 502, detail, { transient: true, cause });

export const guardrailDenied = (detail: string, guardrail: GuardrailDetail) =>
  new ServiceError("guardrail_denied", 403, detail, { guardrail });

/** PostgreSQL SQLSTATEs that mean the database is unreachable or restarting. */
const PG_UNAVAILABLE = new Set(["57P01", "57P02", "57P03", "08000", "08001", "08003", "08004", "08006", "53300"]);
const NET_UNAVAILABLE = new Set(["ECONNREFUSED", "ECONNRESET", "EPIPE", "ETIMEDOUT", "ENOTFOUND"]);

/** Classifies errors from pg at the boundary: a lost database is 503, never a 500 with SQL in it. */
export function classifyDbError(err: unknown): ServiceError | undefined {
  if (err instanceof ServiceError) return err;
  const e = err as { code?: string; message?: string };
  if (typeof e?.code === "string" && (PG_UNAVAILABLE.has(e.code) || NET_UNAVAILABLE.has(e.code))) {
    return unavailable("The database is unavailable; retry shortly.", "database_unavailable", err, 2);
  }
  if (typeof e?.message === "string" && /Connection terminated|timeout exceeded when trying to connect|Client has encountered a connection error/i.test(e.message)) {
    return unavailable("The database is unavailable; retry shortly.", "database_unavailable", err, 2);
  }
  return undefined;
}
