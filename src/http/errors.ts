// The one place where errors become HTTP responses: RFC 7807 problem+json bodies. 5xx internals are
// logged (without secrets) and hidden from the client.
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import { hasZodFastifySchemaValidationErrors } from "fastify-type-provider-zod";
import { classifyDbError, classifyHsmError, ServiceError, type FieldError } from "../errors.js";

const TITLES: Record<number, string> = {
  400: "Bad Request",
  401: "Unauthorized",
  403: "Forbidden",
  404: "Not Found",
  405: "Method Not Allowed",
  409: "Conflict",
  413: "Payload Too Large",
  414: "URI Too Long",
  415: "Unsupported Media Type",
  422: "Unprocessable Entity",
  429: "Too Many Requests",
  500: "Internal Server Error",
  501: "Not Implemented",
  502: "Bad Gateway",
  503: "Service Unavailable",
};

export interface ProblemBody {
  type: string;
  title: string;
  status: number;
  detail: string;
  code?: string;
  [extra: string]: unknown;
}

export function problem(status: number, code: string, detail: string, extra: Record<string, unknown> = {}): ProblemBody {
  // A 400's field-level list is also given as a `fields` map (field → message), the shape the 1Claw
  // SDKs read into ValidationError.fields; the first message per field wins.
  if (Array.isArray(extra.errors) && extra.fields === undefined) {
    const fields: Record<string, string> = {};
    for (const e of extra.errors as FieldError[]) if (fields[e.field] === undefined) fields[e.field] = e.message;
    extra = { ...extra, fields };
  }
  return {
    type: `https://intents.dev/problems/${code.replace(/_/g, "-")}`,
    title: TITLES[status] ?? "Error",
    status,
    detail,
    code,
    ...extra,
  };
}

function fieldErrors(err: {
  validation?: Array<{ instancePath?: string; message?: string; params?: Record<string, unknown> }>;
  validationContext?: string;
}): FieldError[] {
  return (err.validation ?? []).map((v) => {
    const path = (v.instancePath ?? "").replace(/^\//, "").replace(/\//g, ".");
    const missing = (v.params as { missingProperty?: string } | undefined)?.missingProperty;
    return { field: path || missing || err.validationContext || "body", message: v.message ?? "invalid" };
  });
}

/** Maps any thrown value to a status and problem body. Exported for code paths outside a route. */
export function toProblem(err: unknown): { status: number; body: ProblemBody; headers: Record<string, string>; internal: boolean } {
  const headers: Record<string, string> = {};
  if (err instanceof ServiceError) {
    const extra: Record<string, unknown> = { ...(err.opts.extra ?? {}) };
    if (err.opts.errors) extra.errors = err.opts.errors;
    if (err.opts.guardrail) extra.guardrail = err.opts.guardrail;
    Object.assign(headers, err.opts.headers);
    if (err.opts.retryAfterSeconds !== undefined && (err.status === 429 || err.status === 503)) {
      headers["retry-after"] = String(err.opts.retryAfterSeconds);
    }
    return { status: err.status, body: problem(err.status, err.code, err.detail, extra), headers, internal: err.status >= 500 };
  }
  const outside = classifyHsmError(err) ?? classifyDbError(err);
  if (outside) return toProblem(outside);
  // PostgreSQL refuses U+0000 in text (22021 invalid byte sequence; 22P05 in jsonb): a NUL that got past
  // a schema into a query is the client's input, not a server fault. Nothing was written (the statement failed).
  const sqlstate = (err as { code?: unknown; severity?: unknown })?.severity !== undefined ? (err as { code?: unknown }).code : undefined;
  if (sqlstate === "22021" || sqlstate === "22P05") {
    const detail = "The request contains a character that cannot be stored (such as U+0000).";
    return {
      status: 400,
      body: problem(400, "invalid_request", detail, { errors: [{ field: "body", message: detail }] }),
      headers,
      internal: false,
    };
  }

  const fe = err as FastifyError & { validation?: unknown[] };
  if (hasZodFastifySchemaValidationErrors(err) || (fe && Array.isArray(fe.validation))) {
    const errors = fieldErrors(fe as never);
    const detail = errors.length
      ? `Invalid request: ${errors
          .slice(0, 5)
          .map((e) => `${e.field}: ${e.message}`)
          .join("; ")}`
      : "Invalid request.";
    return { status: 400, body: problem(400, "invalid_request", detail, { errors }), headers, internal: false };
  }
  if (fe && typeof fe.statusCode === "number" && fe.statusCode >= 400 && fe.statusCode < 500) {
    const status = fe.statusCode;
    const messages: Record<string, string> = {
      FST_ERR_CTP_BODY_TOO_LARGE: "Request body is larger than the 5 MB limit.",
      FST_ERR_CTP_INVALID_MEDIA_TYPE: "Unsupported content type; send application/json.",
      FST_ERR_CTP_EMPTY_JSON_BODY: "The JSON body is empty.",
      FST_ERR_CTP_INVALID_JSON_BODY: "The body is not valid JSON.",
      // Reach here only once Fastify() is given a `frameworkErrors` handler that calls toProblem.
      FST_ERR_BAD_URL: "The URL is not valid (bad percent-encoding).",
      FST_ERR_MAX_PARAM_LENGTH: "A path parameter is longer than 100 characters.",
    };
    let detail = messages[fe.code] ?? (status === 400 && fe.message?.includes("JSON") ? "The body is not valid JSON." : fe.message);
    if (fe instanceof SyntaxError) detail = "The body is not valid JSON.";
    if (status === 429) headers["retry-after"] = String((fe as { retryAfter?: number }).retryAfter ?? 1);
    const code =
      status === 413
        ? "payload_too_large"
        : status === 429
          ? "rate_limited"
          : status === 415
            ? "unsupported_media_type"
            : "invalid_request";
    const extra = status === 400 ? { errors: [{ field: "body", message: detail ?? "invalid" }] } : {};
    return { status, body: problem(status, code, detail ?? "Invalid request.", extra), headers, internal: false };
  }
  return { status: 500, body: problem(500, "internal_error", "An internal error occurred."), headers, internal: true };
}

export function registerErrorHandling(app: FastifyInstance): void {
  app.setErrorHandler((err: unknown, req: FastifyRequest, reply: FastifyReply) => {
    const { status, body, headers, internal } = toProblem(err);
    // @fastify/rate-limit sets Retry-After to the seconds left in its window before it throws; that
    // beats toProblem's default of 1 s (which would send clients straight back into the limit).
    if (status === 429 && reply.getHeader("retry-after") !== undefined) delete headers["retry-after"];
    if (internal) req.log.error({ err, code: body.code }, "request failed");
    else req.log.debug({ code: body.code, status }, "request rejected");
    void reply.code(status).headers(headers).type("application/problem+json").send(body);
  });
  app.setNotFoundHandler((req, reply) => {
    void reply
      .code(404)
      .type("application/problem+json")
      .send(problem(404, "not_found", `No route ${req.method} ${req.url.split("?")[0]}.`));
  });
}
