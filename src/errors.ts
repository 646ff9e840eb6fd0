// Typed errors with stable snake_case codes. The HTTP error handler (src/http/errors.ts) is the one
// place that turns them into RFC 7807 bodies; nothing else formats an error for a client. Errors from
// outside (pg, the HSM) are classified into ServiceErrors here (classifyDbError, classifyHsmError).
import { HsmError } from "./signer/signer.js";

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

export const badRequest = (detail: string, errors?: FieldError[]) => new ServiceError("invalid_request", 400, detail, { errors });
export const unauthorized = (detail = "Missing, invalid, expired or revoked credentials.") => new ServiceError("unauthorized", 401, detail);
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

// The service's named errors: each code is built here, once; callers pass only what varies.
export const idempotencyKeyInFlight = () =>
  conflict("A request with this Idempotency-Key is still in flight; retry later.", "idempotency_key_in_flight");
export const simulationNotAvailable = () =>
  new ServiceError("simulation_not_available", 503, "Simulation is not available on this server.");
export const trackerNotAvailable = () =>
  new ServiceError("tracker_not_available", 503, "The transaction tracker is not running on this server.");
/** A node refused a read (estimate, call): the request is what it judged. */
export const rpcRejected = (nodeMessage: string, cause: unknown) => new ServiceError("rpc_rejected", 422, nodeMessage, { cause });
/** A chain's RPC did not answer a read. */
export const rpcUnavailable = (detail: string, cause: unknown) => badGateway(detail, "rpc_unavailable", cause);
export const gasEstimationFailed = (why: string) => unprocessable(`Gas estimation failed: ${why}`, "gas_estimation_failed");
export const simulationFailed = (detail: string, extra: Record<string, unknown>) => unprocessable(detail, "simulation_failed", extra);
/** A replacement's fee per gas would pass the chain's cap. */
export const feeCapReached = (why: string) =>
  unprocessable(`Cannot replace this transaction: ${why} (MAX_FEE_PER_GAS_CAP_GWEI).`, "fee_cap_reached");
/** A replacement's worst-case fee would pass the agent's fee limits. */
export const feeLimitReached = (why: string) => unprocessable(`Cannot replace this transaction: ${why}`, "fee_limit_reached");
/** Another worker holds the transaction's lease (tracker/claim.ts LeaseBusy, mapped where it is caught). */
export const transactionBusy = () =>
  new ServiceError("transaction_busy", 409, "The transaction is being worked on; retry shortly.", { retryAfterSeconds: 1 });
export const chainUnavailable = (chain: string) => conflict(`Chain ${chain} has no RPC endpoint configured.`, "chain_unavailable");

/**
 * The HSM's failures (signer/signer.ts HsmError) as the service's errors: a missing key is 404, an
 * existing one 409, anything else the HSM being unavailable (503, retry shortly). Codes are the
 * signer's own (`key_not_found`, `key_exists`, `hsm_unavailable`, …).
 */
export function classifyHsmError(err: unknown): ServiceError | undefined {
  if (!(err instanceof HsmError)) return undefined;
  if (err.code === "key_not_found") return new ServiceError(err.code, 404, "Signing key not found.", { cause: err });
  if (err.code === "key_exists") return new ServiceError(err.code, 409, "A signing key already exists at that path.", { cause: err });
  return new ServiceError(err.code, 503, "The HSM is unavailable; retry shortly.", { transient: true, cause: err, retryAfterSeconds: 1 });
}

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
  if (
    typeof e?.message === "string" &&
    /Connection terminated|timeout exceeded when trying to connect|Client has encountered a connection error/i.test(e.message)
  ) {
    return unavailable("The database is unavailable; retry shortly.", "database_unavailable", err, 2);
  }
  return undefined;
}
