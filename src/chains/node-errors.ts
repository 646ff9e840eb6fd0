// What a chain's node answered, classified once, where the answer enters. The submit pipeline's
// broadcast and reads, the tracker's resends and replacements and the simulators all ask this module
// what an error means; none of them matches a node's wording itself.
//
// Two kinds of failure: no answer (timeout, refused connection, HTTP error: the outcome is unknown, a
// send may have reached the node) and the node's verdict, sorted into one set of outcomes. Wording
// differs between clients (geth, reth, erigon, nethermind, anvil, hosted gateways); the patterns
// below are checked against each client's messages in test/chains/node-errors.test.ts.
import { BaseError, HttpRequestError, RpcRequestError, TimeoutError } from "viem";
import { rpcRejected, rpcUnavailable, type ServiceError } from "../errors.js";
import { scrubText } from "../log.js";

export type NodeVerdict =
  /** The node already holds these exact bytes: they count as sent. */
  | "already_known"
  /** A mined transaction took this nonce. */
  | "nonce_too_low"
  /** The pool holds another transaction at this nonce with fees at least as high ("replacement underpriced"). */
  | "nonce_occupied"
  /** Max fee below the base fee, tip below the pool's minimum: the same bytes may be accepted later. */
  | "fee_too_low"
  /** Balance below value + gas × fee: the same bytes may be accepted once the account is funded. */
  | "insufficient_funds"
  /** Too far ahead of the account's nonce for the pool: accepted once the nonces before it land. */
  | "nonce_too_high"
  /** Intrinsic gas too low or above the block gas limit: never valid as signed. */
  | "gas_limit"
  /** The node refused to serve the call (rate limit, full pool, still syncing): it did not judge the transaction. */
  | "not_judged"
  /** Any other definitive refusal (bad signature, wrong chain id, oversized, …). */
  | "invalid";

export type NodeAnswer = { kind: "no_answer"; message: string } | { kind: "verdict"; verdict: NodeVerdict; message: string; code?: number };

// Order matters: the first matching rule wins ("replacement transaction underpriced" is not a plain
// "underpriced"; "insufficient funds for gas * price + value" is not a fee rule).
const RULES: ReadonlyArray<[NodeVerdict, RegExp]> = [
  [
    "already_known",
    /already known|known transaction|already imported|transaction already exists|already in (the )?(mem)?pool|existing tx with same hash|\bAlreadyKnown\b/i,
  ],
  [
    "nonce_occupied",
    /replacement transaction underpriced|replace(ment)? underpriced|insufficient gas price to replace|\bReplacementNotAllowed\b|could not replace existing tx/i,
  ],
  [
    "nonce_too_low",
    /nonce too low|nonce is too low|nonce has already been used|already used nonce|invalid nonce.*lower|\bOldNonce\b|old nonce/i,
  ],
  [
    "nonce_too_high",
    /nonce too high|nonce gap|\bNonceGap\b|NonceTooFarInFuture|nonce too far in (the )?future|future transaction tries to replace/i,
  ],
  ["insufficient_funds", /insufficient funds|\bInsufficientFunds\b|insufficient balance|not enough (funds|balance)|lack of funds/i],
  [
    "fee_too_low",
    /underpriced|fee cap (is )?(too )?low|feecap too low|less than (the )?block base fee|max fee per gas less than|fee too low|FeeTooLow|gas price too low|gas price supplied is too low|tip (is )?too low|priority fee too low|below (the )?(chain )?minimum|insufficient (max )?fee|below base fee/i,
  ],
  [
    "gas_limit",
    /intrinsic gas too low|exceeds block gas limit|gas limit reached|GasLimitExceeded|gas limit (is )?too (high|low)|out of gas|gas required exceeds/i,
  ],
  [
    "not_judged",
    /rate limit|limit exceeded|too many requests|request limit|capacity|try again later|service unavailable|not synced|syncing|txpool is full|pool is full|transaction pool is full/i,
  ],
];

// JSON-RPC error codes that mean "not served", whatever the text: -32005 limit exceeded, 429 rate limited.
const NOT_JUDGED_CODES = new Set([-32005, 429]);

/** The verdict for a node's error message (and code, when it sent one). Pure; table-tested. */
export function verdictOf(message: string, code?: number): NodeVerdict {
  for (const [verdict, pattern] of RULES) if (pattern.test(message)) return verdict;
  if (code !== undefined && NOT_JUDGED_CODES.has(code)) return "not_judged";
  return "invalid";
}

/** A refusal after which the very same signed bytes may still become valid on chain. */
export function isTemporaryRefusal(verdict: NodeVerdict): boolean {
  return verdict === "fee_too_low" || verdict === "insufficient_funds" || verdict === "nonce_too_high" || verdict === "nonce_occupied";
}

/** A short, safe text: never a URL (it may carry an API key), a stack or unbounded length. */
export function safeMessage(text: string, max = 300): string {
  return scrubText(text).replace(/\s+/g, " ").trim().slice(0, max);
}

/** The node's own answer inside a viem error, if it answered; else undefined (no answer). */
export function nodeErrorMessage(err: unknown): string | undefined {
  if (!(err instanceof BaseError)) return undefined;
  if (err.walk((e) => e instanceof HttpRequestError || e instanceof TimeoutError)) return undefined;
  const rpc = err.walk((e) => e instanceof RpcRequestError) as RpcRequestError | null;
  if (rpc) return safeMessage(rpc.details || rpc.shortMessage);
  const coded = err.walk((e) => typeof (e as { code?: unknown }).code === "number") as (BaseError & { code: number }) | null;
  return coded ? safeMessage(coded.details || coded.shortMessage) : undefined;
}

function nodeCode(err: unknown): number | undefined {
  if (!(err instanceof BaseError)) return undefined;
  const coded = err.walk((e) => typeof (e as { code?: unknown }).code === "number") as (BaseError & { code: number }) | null;
  return coded?.code;
}

/** Why there was no answer, safely: timed out, HTTP status, or unreachable. */
function noAnswerText(err: unknown): string {
  if (err instanceof BaseError && err.walk((e) => e instanceof TimeoutError)) return "the RPC request timed out";
  if (err instanceof BaseError) {
    const h = err.walk((e) => e instanceof HttpRequestError) as HttpRequestError | null;
    if (h?.status) return `the RPC endpoint answered HTTP ${h.status}`;
  }
  return "the RPC endpoint could not be reached";
}

/** Every error from a chain's RPC goes through here once. */
export function classifyNodeError(err: unknown): NodeAnswer {
  const message = nodeErrorMessage(err);
  if (message === undefined) return { kind: "no_answer", message: noAnswerText(err) };
  const code = nodeCode(err);
  return { kind: "verdict", verdict: verdictOf(message, code), message, code };
}

/**
 * True when the endpoint could not be reached or did not answer: a timeout or HTTP failure, or an
 * error that is not viem's at all. A viem error without a node code that is neither (a decoding
 * error, say) is not a transport failure: the simulators report it as the call's result.
 */
export function isTransportError(err: unknown): boolean {
  if (err instanceof BaseError) return !!err.walk((e) => e instanceof HttpRequestError || e instanceof TimeoutError);
  return true;
}

/** A short, safe description of any RPC error: the node's words, or why there were none. */
export function describeRpcError(err: unknown, what: string): string {
  const answer = classifyNodeError(err);
  return answer.kind === "verdict" ? answer.message : `${what}: ${answer.message}`;
}

/**
 * A failed read (estimate, nonce count, call) as the service's error: the node's answer is a 422
 * (the request is what it refused), no answer a transient 502.
 */
export function rpcFailure(err: unknown, what: string): ServiceError {
  const answer = classifyNodeError(err);
  if (answer.kind === "verdict") return rpcRejected(answer.message, err);
  return rpcUnavailable(`Could not ${what}: ${answer.message}.`, err);
}
