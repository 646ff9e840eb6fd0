// One table of real node answers (geth, reth, erigon, nethermind, anvil, hosted gateways) and the
// verdict each must get. The submit pipeline, the tracker and the simulators all act on these verdicts,
// so a wording a client changes shows up here first.
import { describe, expect, it } from "vitest";
import { HttpRequestError, RpcRequestError, TimeoutError } from "viem";
import { classifyNodeError, isTemporaryRefusal, verdictOf, type NodeVerdict } from "../../src/chains/node-errors.js";
import { broadcastOutcomeOf, needsHigherFees } from "../../src/pipeline/broadcast.js";

const TABLE: Array<[client: string, message: string, verdict: NodeVerdict, code?: number]> = [
  // already known: the node holds these exact bytes
  ["geth", "already known", "already_known"],
  ["anvil", "transaction already imported", "already_known"],
  ["erigon", "INTERNAL_ERROR: existing tx with same hash", "already_known"],
  ["nethermind", "AlreadyKnown", "already_known"],
  ["besu", "Known transaction", "already_known"],
  // a mined transaction took the nonce
  ["geth", "nonce too low: address 0x70997970C51812dc3A010C7d01b50e0d17dc79C8, tx: 3 state: 5", "nonce_too_low"],
  ["reth", "nonce too low: next nonce 5, tx nonce 3", "nonce_too_low"],
  ["anvil", "nonce too low", "nonce_too_low"],
  ["nethermind", "OldNonce, Current nonce: 5, nonce of rejected tx: 3", "nonce_too_low"],
  ["openethereum", "Transaction nonce is too low. Try incrementing the nonce.", "nonce_too_low"],
  // the pool holds another transaction at this nonce
  ["geth", "replacement transaction underpriced", "nonce_occupied"],
  ["reth", "[0x5f1c…]: insufficient gas price to replace existing transaction.", "nonce_occupied"],
  ["erigon", "replace underpriced", "nonce_occupied"],
  // fees too low for now
  ["geth", "max fee per gas less than block base fee: address 0x7099…, maxFeePerGas: 1 baseFee: 7", "fee_too_low"],
  ["geth", "transaction underpriced: tip needed 1, tip permitted 0", "fee_too_low"],
  ["erigon", "feecap too low", "fee_too_low"],
  ["nethermind", "FeeTooLow, MaxFeePerGas too low. MaxFeePerGas: 1, BaseFee: 7", "fee_too_low"],
  ["nethermind", "FeeTooLowToCompete", "fee_too_low"],
  ["reth", "[0xab…] Transaction feeCap 1 below chain minimum.", "fee_too_low"],
  ["openethereum", "Transaction gas price supplied is too low. There is another transaction with same nonce in the queue.", "fee_too_low"],
  // not enough funds for now
  ["geth", "insufficient funds for gas * price + value: address 0x7099… have 0 want 21000000000000", "insufficient_funds"],
  ["reth", "insufficient funds for gas * price + value: have 0 want 21000", "insufficient_funds"],
  ["nethermind", "InsufficientFunds, Account balance: 0, cumulative cost: 21000", "insufficient_funds"],
  // too far ahead
  ["geth", "nonce too high", "nonce_too_high"],
  ["nethermind", "NonceGap, Future nonce. Expected nonce: 5", "nonce_too_high"],
  // gas limit never valid for these bytes
  ["geth", "intrinsic gas too low: have 20000, want 21000", "gas_limit"],
  ["geth", "exceeds block gas limit", "gas_limit"],
  ["nethermind", "GasLimitExceeded, Gas limit: 30000000, gas limit of rejected tx: 1000000000", "gas_limit"],
  // the node did not judge it
  ["infura", "daily request count exceeded, request rate limited", "not_judged"],
  ["alchemy", "Your app has exceeded its compute units per second capacity.", "not_judged"],
  ["geth", "txpool is full", "not_judged"],
  ["gateway", "header not found", "invalid"],
  ["gateway", "some message", "not_judged", -32005],
  ["gateway", "some message", "not_judged", 429],
  // everything else is a definitive refusal
  ["geth", "invalid sender", "invalid"],
  ["geth", "only replay-protected (EIP-155) transactions allowed over RPC", "invalid"],
  ["geth", "oversized data", "invalid"],
  ["geth", "tx fee (1.50 ether) exceeds the configured cap (1.00 ether)", "invalid"],
];

describe("node answers: one verdict per message, whatever the client", () => {
  it.each(TABLE)("%s: %s", (_client, message, verdict, code) => {
    expect(verdictOf(message, code)).toBe(verdict);
  });

  it("temporary refusals are the ones whose very bytes may still land", () => {
    const temporary = (["fee_too_low", "insufficient_funds", "nonce_too_high", "nonce_occupied"] as const).every(isTemporaryRefusal);
    expect(temporary).toBe(true);
    for (const v of ["already_known", "nonce_too_low", "gas_limit", "not_judged", "invalid"] as const)
      expect(isTemporaryRefusal(v)).toBe(false);
  });
});

describe("classifyNodeError: a verdict only when the node answered", () => {
  it("a JSON-RPC error object is the node's verdict, with its code", () => {
    const err = new RpcRequestError({
      body: {},
      url: "http://127.0.0.1:8545/secret-key",
      error: { code: -32000, message: "nonce too low" },
    });
    expect(classifyNodeError(err)).toEqual({ kind: "verdict", verdict: "nonce_too_low", message: "nonce too low", code: -32000 });
  });

  it("a timeout or an HTTP failure is no answer, and names no URL", () => {
    const timeout = new TimeoutError({ body: {}, url: "http://user:pw@127.0.0.1:8545/v3/abcdef" });
    const http = new HttpRequestError({ url: "http://127.0.0.1:8545/v3/abcdef", status: 502 });
    const a = classifyNodeError(timeout);
    const b = classifyNodeError(http);
    expect(a).toEqual({ kind: "no_answer", message: "the RPC request timed out" });
    expect(b).toEqual({ kind: "no_answer", message: "the RPC endpoint answered HTTP 502" });
    expect(classifyNodeError(new Error("socket hang up"))).toEqual({ kind: "no_answer", message: "the RPC endpoint could not be reached" });
  });
});

// The submit pipeline's first send and the tracker's sends share one outcome per node answer and one
// rule for "pay more": a first send whose nonce another pool transaction holds fails (nonce kept),
// whichever of the two sent it; only a replacement or resend of ours is bumped on that answer.
describe("broadcast outcomes: the same answer means the same thing to submit and tracker", () => {
  const rpcError = (message: string, code = -32000) => new RpcRequestError({ body: {}, url: "http://node", error: { code, message } });

  it("replacement transaction underpriced: nonce held, never a bump on a first send", () => {
    const outcome = broadcastOutcomeOf(rpcError("replacement transaction underpriced"));
    expect(outcome).toMatchObject({ kind: "nonce_used", verdict: "nonce_occupied" });
    expect(needsHigherFees(outcome, true)).toBe(false);
    expect(needsHigherFees(outcome, false)).toBe(true);
  });

  it("every table message gets one outcome; only fee verdicts and nonce_occupied ask for higher fees", () => {
    for (const [, message, verdict, code] of TABLE) {
      const outcome = broadcastOutcomeOf(rpcError(message, code));
      if (verdict === "already_known") expect(outcome.kind).toBe("already_known");
      else if (verdict === "not_judged") expect(outcome.kind).toBe("unknown");
      else if (verdict === "nonce_too_low" || verdict === "nonce_occupied") expect(outcome.kind).toBe("nonce_used");
      else expect(outcome.kind).toBe("rejected");
      expect(needsHigherFees(outcome, true)).toBe(verdict === "fee_too_low");
      expect(needsHigherFees(outcome, false)).toBe(verdict === "fee_too_low" || verdict === "nonce_occupied");
    }
  });

  it("no answer is an unknown outcome, never a rejection", () => {
    const outcome = broadcastOutcomeOf(new TimeoutError({ body: {}, url: "http://node" }));
    expect(outcome.kind).toBe("unknown");
    expect(needsHigherFees(outcome, false)).toBe(false);
  });
});
