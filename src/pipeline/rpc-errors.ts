// Classifies errors from a chain's RPC once, where they enter. A JSON-RPC error object is the node's
// answer (definitive); a timeout, refused connection or HTTP failure is an unknown outcome.
import { BaseError, HttpRequestError, RpcRequestError, TimeoutError } from "viem";
import { ServiceError } from "../errors.js";

export type BroadcastOutcome =
  | { kind: "accepted" }
  | { kind: "already_known" }
  | { kind: "nonce_used"; message: string }
  | { kind: "rejected"; message: string }
  | { kind: "unknown"; message: string };

function nodeMessage(err: unknown): string | undefined {
  if (err instanceof BaseError) {
    const rpc = err.walk((e) => e instanceof RpcRequestError) as RpcRequestError | null;
    if (rpc) return rpc.details || rpc.shortMessage;
    const withCode = err.walk((e) => typeof (e as { code?: unknown }).code === "number" && !(e instanceof HttpRequestError)) as
      | (BaseError & { code: number })
      | null;
    if (withCode && !(err.walk((e) => e instanceof HttpRequestError || e instanceof TimeoutError))) {
      return withCode.details || withCode.shortMessage;
    }
  }
  return undefined;
}

/** Short, safe text for an error: never a URL (it may carry an API key) or a stack. */
function safeText(err: unknown): string {
  const m = nodeMessage(err);
  if (m) return m.slice(0, 300);
  if (err instanceof TimeoutError || (err instanceof BaseError && err.walk((e) => e instanceof TimeoutError))) return "the RPC request timed out";
  if (err instanceof BaseError && err.walk((e) => e instanceof HttpRequestError)) {
    const h = err.walk((e) => e instanceof HttpRequestError) as HttpRequestError;
    return h.status ? `the RPC endpoint answered HTTP ${h.status}` : "the RPC endpoint could not be reached";
  }
  return "the RPC endpoint could not be reached";
}

/** A failed read (estimate, count, call): 422-worthy node answers vs 502 unreachable node. */
export function rpcFailure(err: unknown, what: string): ServiceError {
  const m = nodeMessage(err);
  if (m) return new ServiceError("rpc_rejected", 422, m.slice(0, 300), { cause: err });
  return new ServiceError("rpc_unavailable", 502, `Could not ${what}: ${safeText(err)}.`, { transient: true, cause: err });
}

const ALREADY_KNOWN = /already known|known transaction|already imported|transaction already exists|already in (the )?mempool/i;
const NONCE_USED = /nonce too low|nonce has already been used|replacement transaction underpriced|already used nonce|invalid nonce.*lower/i;
// The node did not judge the transaction: it refused to serve us (rate limit, overload, not synced).
const NOT_JUDGED = /rate limit|limit exceeded|too many requests|request limit|capacity|try again later|service unavailable|not synced|syncing/i;
const NOT_JUDGED_CODES = new Set([-32005, 429]);

function nodeCode(err: unknown): number | undefined {
  if (!(err instanceof BaseError)) return undefined;
  const withCode = err.walk((e) => typeof (e as { code?: unknown }).code === "number") as (BaseError & { code: number }) | null;
  return withCode?.code;
}

export function classifyBroadcastError(err: unknown): BroadcastOutcome {
  const m = nodeMessage(err);
  if (m === undefined) return { kind: "unknown", message: safeText(err) };
  if (ALREADY_KNOWN.test(m)) return { kind: "already_known" };
  if (NONCE_USED.test(m)) return { kind: "nonce_used", message: m.slice(0, 300) };
  // Never a rejection: that would fail the row and release a nonce the node may still hold.
  if (NOT_JUDGED.test(m) || NOT_JUDGED_CODES.has(nodeCode(err) ?? 0)) return { kind: "unknown", message: m.slice(0, 300) };
  return { kind: "rejected", message: m.slice(0, 300) };
}
