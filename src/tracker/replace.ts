// Step 3 of following a transaction, and the operators' speed-up and cancel: a replacement with the
// same nonce and higher fees (fee-bump.ts has the policy), signed again in the HSM. The transaction
// keeps its id; the new signature is one more attempt. Kinds:
//   bump      the tracker's, for a transaction stuck or refused as underpriced: same call, more fees;
//   speed_up  an operator's, the same;
//   cancel    an operator's: a zero-value transfer to the sender itself, which takes the nonce instead.
// Order, as in the submit pipeline: sign → COMMIT the attempt (+ audit) → send → record the answer.
// A crash after COMMIT leaves a `signed` attempt that the tracker sends. Needs the row's lease.
// Throws ServiceError 409 (no longer replaceable, lease lost), 422 (the fee cap forbids a +10% bump, or
// the agent's fee limits forbid the replacement's worst case: fee_limit_reached).
import { keccak256, parseTransaction, parseUnits, type Hex, type TransactionSerializable } from "viem";
import { getAgent, lockSpend } from "../db/agents.js";
import type { PoolClient } from "../db/pool.js";
import { checkFeeGuardrail, checkRollingGuardrails, policyOf } from "../pipeline/guardrails.js";
import { auditTransaction } from "./audit.js";
import type { Principal } from "../auth/principal.js";
import { getTransaction, type TxRow } from "../db/transactions.js";
import { conflict, feeCapReached, feeLimitReached } from "../errors.js";
import { feeFields, type Fees } from "../pipeline/fees.js";
import { currentAttempt, ensureAttempts, insertAttempt, listAttempts, type AttemptKind, type AttemptRow } from "../db/attempts.js";
import { withLease } from "../db/leases.js";
import { bumpFees, estimateReplacementFees, highestFees } from "./fee-bump.js";
import { sendAttempt } from "./rebroadcast.js";
import { SYSTEM_AGENT_ID, TRACKER_ACTOR, type StepContext } from "./types.js";

export type ReplacementKind = Exclude<AttemptKind, "original">;

export interface ReplaceOutcome {
  row: TxRow;
  attempt: AttemptRow;
  /** sent: a node took it; unknown: no answer yet (the tracker resends it); failed: a node refused it. */
  result: "sent" | "unknown" | "failed";
}

const CANCEL_GAS = 21_000n;

export function replaceable(row: TxRow): string | undefined {
  if (row.nonce === null || row.signed_tx === null) return "it has no signed transaction";
  if (row.status === "sign_only") return "it was signed only, never broadcast by this service";
  if (row.status !== "signed" && row.status !== "broadcast") return `its status is ${row.status}`;
  if (row.chain_status !== null && row.chain_status !== "unconfirmed") return `it is already ${row.chain_status}`;
  if (row.block_number !== null) return "it is already mined";
  return undefined;
}

export async function replaceTransaction(
  sc: StepContext,
  row: TxRow,
  kind: ReplacementKind,
  meta: { actor: Principal | typeof TRACKER_ACTOR; reason: string; requestId?: string },
): Promise<ReplaceOutcome> {
  const why = replaceable(row);
  if (why) throw conflict(`This transaction cannot be replaced: ${why}.`, "not_replaceable");
  const attempts = await ensureAttempts(sc.deps.pool, row);
  const type = row.tx_type === "legacy" ? "legacy" : "eip1559";
  const estimate = await estimateReplacementFees(sc.client, sc.chain, type);
  const chainCap = sc.chain.max_fee_per_gas_gwei != null ? parseUnits(String(sc.chain.max_fee_per_gas_gwei), 9) : sc.opts.maxFeePerGasWei;
  const bump = bumpFees(highestFees(attempts, type), estimate, chainCap < sc.opts.maxFeePerGasWei ? chainCap : sc.opts.maxFeePerGasWei);
  if (!bump.ok) throw feeCapReached(bump.reason);

  const cancel = kind === "cancel";
  const from = row.from_address as Hex;
  const call = cancel
    ? { to: from, value: 0n, data: undefined, gas: await cancelGas(sc, from) }
    : {
        to: row.to_address as Hex,
        value: BigInt(row.value_wei),
        data: (row.data ?? undefined) as Hex | undefined,
        gas: BigInt(row.gas_limit!),
      };
  const unsigned = cancel
    ? build(sc.chain.chain_id, Number(row.nonce), call, bump.fees)
    : keepLists(build(sc.chain.chain_id, Number(row.nonce), call, bump.fees), row.signed_tx!);
  const signedTx = await sc.deps.signer.signTransaction(row.signing_key_path, unsigned);
  const hash = keccak256(signedTx);
  const previous = currentAttempt(attempts);

  const attempt = await withLease(sc.deps.pool, row.id, sc.owner, async (tx, locked) => {
    const stale = replaceable(locked);
    if (stale) throw conflict(`This transaction cannot be replaced: ${stale}.`, "not_replaceable");
    // The replacement's worst case is the agent's: checked against its fee limits under its spend
    // lock and counted on the row (fee_wei keeps the largest of the row's signatures).
    await chargeReplacement(tx, locked, call.gas * (bump.fees.type === "legacy" ? bump.fees.gasPrice : bump.fees.maxFeePerGas));
    const a = await insertAttempt(tx, {
      tx_id: row.id,
      kind,
      tx_hash: hash,
      signed_tx: signedTx,
      to_address: call.to.toLowerCase(),
      value_wei: call.value,
      gas_limit: call.gas,
      gas_price: bump.fees.type === "legacy" ? bump.fees.gasPrice : null,
      max_fee_per_gas: bump.fees.type === "eip1559" ? bump.fees.maxFeePerGas : null,
      max_priority_fee_per_gas: bump.fees.type === "eip1559" ? bump.fees.maxPriorityFeePerGas : null,
      status: "signed",
    });
    await auditTransaction(
      tx,
      "transaction.replaced",
      row.id,
      {
        chain: row.chain,
        nonce: Number(row.nonce),
        kind,
        reason: meta.reason,
        replaced_tx_hash: previous?.tx_hash ?? row.tx_hash,
        tx_hash: hash,
        ...feeDetails(bump.fees),
      },
      { actor: meta.actor, requestId: meta.requestId },
    );
    return a;
  });
  if (!attempt) throw conflict("This transaction was taken over by another process; retry.", "transaction_busy");
  sc.deps.log.info(
    { tx_id: row.id, chain: row.chain, kind, old: previous?.tx_hash, new: hash, reason: meta.reason },
    "transaction replaced",
  );

  const sent = await sendAttempt(sc, row, attempt, { rebroadcast: false, actor: meta.actor, requestId: meta.requestId });
  const result = sent === "sent" ? "sent" : sent === "unknown" ? "unknown" : "failed";
  const [updated, all] = await Promise.all([getTransaction(sc.deps.pool, row.id), listAttempts(sc.deps.pool, row.id)]);
  return { row: updated!, attempt: all.find((a) => a.tx_hash === hash)!, result };
}

/**
 * A replacement may cost more than the signature it replaces: the difference is counted against the
 * agent that submitted the transaction (its tx_max_fee per signature, its tx_daily_fee_budget over
 * 24 h), whoever asked for the replacement (the tracker's bump, an operator's speed-up or cancel).
 * Locks the agent's spend row, as the submit pipeline does. Service-made rows (gap fills) have no agent.
 */
async function chargeReplacement(tx: PoolClient, row: TxRow, feeWei: bigint): Promise<void> {
  const increase = feeWei - BigInt(row.fee_wei);
  if (row.agent_id !== SYSTEM_AGENT_ID) {
    const agent = await getAgent(tx, row.agent_id);
    if (agent) {
      const policy = policyOf(agent);
      const denial = checkFeeGuardrail(policy, feeWei);
      if (denial) throw feeLimitReached(denial.detail);
      if (increase > 0n && policy.dailyFeeBudgetWei !== null) {
        // Locked: the agent's spend row, so this charge and the agent's submissions see each other.
        const spent = (await lockSpend(tx, [row.agent_id])).get(row.agent_id)!;
        const over = checkRollingGuardrails(
          { ...policy, dailyLimitWei: null, maxPerDay: null },
          { valueWei: 0n, feeWei: increase },
          { spentWei: 0n, countToday: 0, feesWei: spent.fees_wei },
        );
        if (over) throw feeLimitReached(over.detail);
      }
    }
  }
  if (increase > 0n) await tx.query("UPDATE transactions SET fee_wei = $2 WHERE id = $1", [row.id, feeWei.toString()]);
}

function build(
  chainId: number,
  nonce: number,
  call: { to: Hex; value: bigint; data?: Hex; gas: bigint },
  fees: Fees,
): TransactionSerializable {
  return { chainId, nonce, to: call.to, value: call.value, data: call.data, gas: call.gas, ...feeFields(fees) };
}

/**
 * A speed-up signs the same transaction at higher fees: it keeps the first signature's access list and
 * EIP-7702 authorizations (their nonces follow the transaction's, which does not change), so a type-1
 * or type-4 transaction stays what the agent asked for.
 */
function keepLists(tx: TransactionSerializable, firstSigned: string): TransactionSerializable {
  const first = parseTransaction(firstSigned as Hex);
  if (first.type === "eip7702")
    return { ...tx, type: "eip7702", authorizationList: first.authorizationList, accessList: first.accessList } as TransactionSerializable;
  if (first.type === "eip2930") return { ...tx, type: "eip2930", accessList: first.accessList ?? [] } as TransactionSerializable;
  if (first.accessList?.length) return { ...tx, accessList: first.accessList } as TransactionSerializable;
  return tx;
}

/** 21,000 on most chains; asked of the node where a plain transfer costs more (L2 data fees). */
async function cancelGas(sc: StepContext, from: Hex): Promise<bigint> {
  const est = await sc.client.estimateGas({ account: from, to: from, value: 0n }).catch(() => CANCEL_GAS);
  return est > CANCEL_GAS ? est : CANCEL_GAS;
}

function feeDetails(f: Fees): Record<string, string> {
  return f.type === "legacy"
    ? { gas_price: f.gasPrice.toString() }
    : { max_fee_per_gas: f.maxFeePerGas.toString(), max_priority_fee_per_gas: f.maxPriorityFeePerGas.toString() };
}
