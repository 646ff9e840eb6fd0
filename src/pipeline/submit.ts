// The submit pipeline, top to bottom. This is the one file that knows the order of the stages and
// where the database transaction opens and closes:
//
//   per request:  (parsed by the route) → idempotency claim → resolve chain and key → static guardrails →
//                 calldata and token checks → (simulate) → gas and fees (RPC, outside any lock) →
//                 fee bounds: the chain's cap and price multiple, the gas limit, the agent's tx_max_fee →
//                 join the chain's next commit group (a caller-chosen nonce: a group of its own)
//   per group:    each signing address's nonce counts (read while the group before it commits) →
//                 BEGIN: in one round trip, lock the agents' spend rows and read their rolling spend,
//                        then lock each (chain, address) nonce row, in address order, and reserve one
//                        nonce per request (nonce.ts) → rolling limits (value, count, worst-case fees,
//                        tokens), each request seeing those before it (limits.ts); a denial rolls the
//                        group back and it commits again without that request (a caller-chosen nonce
//                        is checked against the key's window after the limits instead) → sign each in the
//                        HSM (in parallel) → rows (rows.ts) + audit events + token spend + idempotency
//                        links in one statement  COMMIT →
//                 broadcast in nonce order (one JSON-RPC batch) → record the outcomes (accepted ones in
//                 one statement; rejections release their nonce and are answered without their bytes)
//                 → store the idempotent answers (group-broadcast.ts)
//
// Group commit: each submission needs a row lock, a COMMIT and a node round trip, and on a busy chain
// those cost more than the signature. Submissions that arrive while a group is committing wait and
// then commit together, whatever their signing address (CommitGroups.enqueue, commit-groups.ts). When the chain is
// idle a group is one request and nothing waits; under load the locks, the COMMIT and the round trip
// are shared by the whole group, and a group's broadcast overlaps the next one's commit.
//
// A failure before COMMIT leaves nothing behind (no nonce used, no row, claims released). After COMMIT
// the stored rows win: an unknown broadcast outcome stays `signed` and the tracker rebroadcasts it.
import { parseUnits } from "viem";
import { auditRecordset } from "../db/audit.js";
import { approvalGate, replayAnswer } from "../approvals/gate.js";
import { rpcFailure } from "../chains/node-errors.js";
import type { ChainClients } from "../chains/clients.js";
import type { Chain } from "../chains/registry.js";
import { withTransaction } from "../db/pool.js";
import { lockSpend } from "../db/agents.js";
import { getTransaction, insertTransactionGroup, SIGNED_BY_MODE } from "../db/transactions.js";
import { idempotencyKeyInFlight, ServiceError, simulationNotAvailable } from "../errors.js";
import { recordDenial } from "./denials.js";
import { checkAuthorizations, signAuthorizations } from "./eip7702.js";
import {
  feePerGasCeiling,
  readFeeMarket,
  resolveFees,
  resolveGasLimit,
  worstCaseFee,
  type FeeBounds,
  type FeeMarket,
  type Fees,
} from "./fees.js";
import { finishGroup } from "./group-broadcast.js";
import { checkFeeGuardrail, checkStaticGuardrails, policyOf, type Denial } from "./guardrails.js";
import { claimRequest, completeClaim, releaseClaim, type Claim } from "./idempotency.js";
import { checkGroupLimits, limitedAgents } from "./limits.js";
import { lockSpendAndReserveNonces, reserveExplicitNonce, type ChainCounts } from "./nonce.js";
import type { Intent } from "./request.js";
import { resolveChain, resolveSigningKey } from "./resolve.js";
import { toTransactionResponse } from "./response.js";
import { auditDetails, buildTransaction, signedRow } from "./rows.js";
import { simulateBeforeSigning, type PassedSimulation } from "./simulate.js";
import { calldataPolicyOf, checkIntentCalldata, simulatedOutflows } from "./token-policy.js";
import { checkSimulatedLogs, mergeOutflows } from "./token-guardrails.js";
import { fromOf, type Committed, type PipelineDeps, type Queued, type SubmitInput, type SubmitResult } from "./types.js";

export async function submitTransaction(deps: PipelineDeps, input: SubmitInput): Promise<SubmitResult> {
  const { principal } = input;
  const agent = principal.agent;

  // 1. The route checked who may call, the data size cap and the body's shape (src/http/intents.ts).
  const { intent } = input;

  // 2. Idempotency: claim the key, or replay what it already produced.
  let claim: Claim | undefined;
  if (input.idempotencyKey !== undefined) {
    const claimed = await claimRequest(deps, agent.id, input.idempotencyKey, input.operation ?? input.mode, input.body);
    if (claimed.kind === "replay") return replayAnswer(deps.pool, agent.id, claimed);
    if (claimed.kind === "orphaned") return finishOrphan(deps, claimed.claim, claimed.txId, claimed.finish);
    claim = claimed.claim;
  }

  try {
    // 3. Chain and signing key.
    const chain = resolveChain(deps.chains, intent.chain);
    const policy = policyOf(agent);
    const key = await resolveSigningKey(deps.pool, deps.signer, agent, chain, intent.signingKeyPath, deps.keyAccess);

    // 4. Guardrails that need no history.
    const endGuardrails = deps.metrics.stageDuration.startTimer({ stage: "guardrails" });
    const denial = checkStaticGuardrails(policy, { chain, to: intent.to, valueWei: intent.valueWei, data: intent.data });
    endGuardrails();
    if (denial) throw await deny(deps, input, intent, chain, denial);
    // EIP-7702 authorizations: allowlisted delegates, this chain (./eip7702.ts).
    const authDenial = checkAuthorizations(agent, chain, intent);
    if (authDenial) throw await deny(deps, input, intent, chain, authDenial);

    // 4b. What the calldata does with tokens: recipient and spender allowlists, per-token amounts,
    //     unlimited approvals, and the agent's policy for calldata nobody can decode.
    const client = deps.clients.get(chain);
    const calldata = await checkIntentCalldata(deps.pool, client, chain, agent, key.address, intent.to, intent.data);
    if (calldata.denial) throw await deny(deps, input, intent, chain, calldata.denial);

    // 5. Simulation before signing: asked for, or forced by the operator (per agent or globally). No
    //    nonce is reserved yet; a failed simulation records a `simulation_failed` row and throws 422.
    let simulation: PassedSimulation | undefined;
    if (intent.simulateFirst || agent.simulate_required || deps.config?.simulateAll || calldata.simulate) {
      if (!deps.simulators) throw simulationNotAvailable();
      simulation = await simulateBeforeSigning(
        { ...deps, simulators: deps.simulators },
        { principal, chain, key, intent, mode: input.mode, requestId: input.requestId, ip: input.ip },
      );
    }
    // Calldata nobody could decode was simulated: every party its logs give tokens or allowances to
    // must pass the recipient allowlist. A simulator that reports no logs cannot show that.
    if (calldata.simulate && simulation) {
      const toAllowlist = calldataPolicyOf(agent).toAllowlist;
      const logDenial = simulation.logs
        ? checkSimulatedLogs({ toAllowlist }, key.address, simulation.logs)
        : toAllowlist.length > 0
          ? {
              reason_code: "simulation_logs_unavailable",
              detail:
                "This chain's simulator does not report logs, so the parties of undecodable calldata cannot be checked against tx_to_allowlist.",
              limit: toAllowlist,
              current: null,
              attempted: null,
            }
          : null;
      if (logDenial) throw await deny(deps, input, intent, chain, logDenial);
    }
    // Token outflows of the signing address: the larger of what the calldata says and what the
    // simulation saw, so a router or multicall that moves tokens indirectly is still counted.
    const outflows = mergeOutflows(
      calldata.outflows,
      simulation ? await simulatedOutflows(deps.pool, client, chain, key.address, simulation.balanceChanges, simulation.logs) : [],
    );
    const tokenLimited = outflows.some((o) => agent.tx_token_limits?.[o.token] !== undefined);

    // Bounded work per signing address: beyond the bound, shed load instead of queueing on the row lock.
    const addressKey = `${chain.chain_id}:${key.address.toLowerCase()}`;
    const release = deps.admission.acquire(addressKey);
    try {
      // 6. Gas and fees, read before joining the queue so no lock is held across an RPC round trip.
      //    The fee market (base fee, block gas limit) comes with the fee read, cached per second.
      const [gasLimit, { fees, market }] = await deps.metrics.time("chain_read", () =>
        Promise.all([
          resolveGasLimit(chain, client, intent, key.address, {
            maxGasLimit: policy.maxGasLimit,
            blockGasLimit: () => readFeeMarket(chain, client).then((m) => m.blockGasLimit),
          }),
          resolveFees(chain, client, intent),
        ]),
      );
      // 6b. Fee bounds: the chain's (cap, multiple of the current price), the gas limit's, the agent's
      //     per-transaction fee limit. What the signature can cost at worst is then known and counted.
      const gas = gasLimit.gas;
      const feeWei = worstCaseFee(gas, fees);
      const feeDenial =
        checkFeeBounds(feeBoundsOf(deps, chain), market, fees) ??
        (gasLimit.exceeds ? gasDenial(gas, gasLimit.exceeds) : null) ??
        checkFeeGuardrail(policy, feeWei);
      if (feeDenial) throw await deny(deps, input, intent, chain, feeDenial);

      // 6c. Approval rules (src/approvals): past every guardrail, before any nonce, the request may
      //     wait for operators (202). The approved run comes back here and goes on.
      const held = await approvalGate(
        deps,
        input,
        claim,
        {
          costWei: intent.valueWei + feeWei,
          tokens: outflows,
          eip7702: (intent.authorizations?.length ?? 0) > 0,
        },
        {
          chain,
          from: key.address,
          details: {
            to: intent.to,
            value_wei: intent.valueWei.toString(),
            fee_wei: feeWei.toString(),
            gas_limit: gas.toString(),
            data_bytes: intent.data ? (intent.data.length - 2) / 2 : 0,
            selector: intent.data && intent.data.length >= 10 ? intent.data.slice(0, 10) : null,
            tokens: outflows.map((o) => ({ token: o.token, amount: o.amount.toString() })),
            authorizations: intent.authorizations ?? [],
            balance_changes: simulation?.balanceChanges ?? null,
            signing_key_path: key.path,
            mode: input.mode,
          },
        },
      );
      if (held) return held;

      // 7–9. The chain's next commit group signs, commits, broadcasts and answers (commitGroup below).
      //      A caller-chosen nonce is committed in a group of its own.
      return await new Promise<SubmitResult>((resolve, reject) => {
        const queued = deps.metrics.stageDuration.startTimer({ stage: "queue_wait" });
        const item: Queued = {
          input,
          intent,
          policy,
          chain,
          key,
          gas,
          fees,
          feeWei,
          simulation,
          outflows,
          tokenLimited,
          recheck: calldata.recheck,
          claim,
          queued,
          resolve,
          reject,
        };
        deps.commits.enqueue(
          String(chain.chain_id),
          item,
          {
            solo: intent.nonce !== undefined,
            // 7a. The chain's view of the address (mined and pending counts), read once per address
            //     and group, while the group before it commits.
            prepareKey: key.address.toLowerCase(),
            prepare: () => deps.metrics.time("chain_read", () => chainCounts(client, chain, key.address)),
          },
          (items, counts) => commitGroup(deps, items, counts),
        );
      });
    } finally {
      release();
    }
  } catch (err) {
    // Only a request that committed nothing gets here: after COMMIT a group always answers.
    if (claim) await releaseClaim(deps.pool, claim).catch(() => {});
    throw err;
  }
}

/**
 * 7. One commit group: the requests queued on one chain, for any of its signing addresses. Rejects
 * them all if anything fails before COMMIT (nothing was written); after COMMIT, hands them to
 * finishGroup without waiting for it, so the next group can take the locks while this one broadcasts.
 */
async function commitGroup(deps: PipelineDeps, items: Queued[], counts: Map<string, Promise<ChainCounts>>): Promise<void> {
  for (const item of items) item.queued();
  return commitItems(deps, items, counts);
}

async function commitItems(deps: PipelineDeps, items: Queued[], counts: Map<string, Promise<ChainCounts>>): Promise<void> {
  let outcome: { committed: Committed[]; denied: Array<{ item: Queued; denial: Denial }> };
  try {
    const resolved = new Map<string, ChainCounts>();
    for (const [address, p] of counts) resolved.set(address, await p);
    outcome = await signAndCommit(deps, items, resolved);
  } catch (err) {
    if (err instanceof Regroup) {
      // Rolled back: nothing was signed or written. The denied requests are answered; the rest commit
      // again, their spend read anew under the locks.
      answerDenied(deps, err.denied);
      if (err.accepted.length > 0) await commitItems(deps, err.accepted, counts);
      return;
    }
    // PostgreSQL refusing one request's values (a data or constraint error) would fail everyone in
    // its group: commit them one by one instead, so only that request fails. An outage fails all.
    if (items.length > 1 && isDataError(err)) {
      for (const item of items) await commitItems(deps, [item], counts);
      return;
    }
    for (const item of items) item.reject(err);
    return;
  }
  answerDenied(deps, outcome.denied);

  // Test-only crash point (INTENTS_TEST_CRASH_AFTER_COMMIT=1 via src/config.ts): die as kill -9 would,
  // after COMMIT and before the broadcast, so tests can show the tracker sends the row once and never signs it twice.
  if (deps.config?.testCrashAfterCommit && outcome.committed.some((c) => c.item.input.mode === "submit"))
    process.kill(process.pid, "SIGKILL");

  void finishGroup(deps, outcome.committed);
}

async function signAndCommit(
  deps: PipelineDeps,
  items: Queued[],
  counts: Map<string, ChainCounts>,
): Promise<{ committed: Committed[]; denied: Array<{ item: Queued; denial: Denial }> }> {
  const { chain } = items[0];
  const explicitNonce = items[0].intent.nonce; // only ever in a group of one

  let endCommit = () => 0;
  const result = await withTransaction(deps.pool, async (tx) => {
    const endLockWait = deps.metrics.stageDuration.startTimer({ stage: "lock_wait" });
    const agentIds = limitedAgents(items);
    let accepted: Queued[];
    let denied: Array<{ item: Queued; denial: Denial }> = [];
    let nonces: bigint[];
    if (explicitNonce !== undefined) {
      // 7b. A caller-chosen nonce (a group of one): rolling limits, then the nonce against the key's window.
      const checked = await checkGroupLimits(tx, items, agentIds.length ? await lockSpend(tx, agentIds) : new Map());
      ({ accepted, denied } = checked);
      if (accepted.length === 0) return { committed: [], denied };
      const item = accepted[0];
      const r = await reserveExplicitNonce(
        tx,
        chain.chain_id,
        fromOf(item),
        item.input.principal.agent.id,
        counts.get(fromOf(item))!,
        BigInt(explicitNonce),
      );
      if (!r.ok) {
        endLockWait();
        const denial: Denial = {
          reason_code: "nonce_not_allowed",
          detail: `Explicit nonce refused: ${r.why}.`,
          limit: `${r.window[0]}..${r.window[1]}`,
          current: Number(r.window[1]),
          attempted: explicitNonce,
        };
        return { committed: [], denied: [...denied, { item, denial }] };
      }
      nonces = [r.nonce];
    } else {
      // 7b–c. One round trip: the agents' spend locks and rolling spend, then one nonce per request under
      // each (chain, address) row lock, by address (the lock order), then arrival. The limits are checked
      // after; a group with a denied request rolls back and commits again without it (commitItems), so
      // no nonce is ever reserved for a request that does not sign.
      accepted = [...items].sort((a, b) => (fromOf(a) < fromOf(b) ? -1 : fromOf(a) > fromOf(b) ? 1 : 0));
      const perAddress = new Map<string, number>();
      for (const item of accepted) perAddress.set(fromOf(item), (perAddress.get(fromOf(item)) ?? 0) + 1);
      const locked = await lockSpendAndReserveNonces(
        tx,
        chain.chain_id,
        agentIds,
        [...perAddress].map(([address, count]) => ({ address, count, counts: counts.get(address)! })),
      );
      const checked = await checkGroupLimits(tx, items, locked.spend);
      if (checked.denied.length > 0) throw new Regroup(checked.accepted, checked.denied);
      const next = new Map([...locked.nonces].map(([address, list]) => [address, list.values()]));
      nonces = accepted.map((item) => next.get(fromOf(item))!.next().value!);
    }
    endLockWait();

    // 7d. Signatures, in parallel over the HSM's session pool.
    const signed = await Promise.all(
      accepted.map((item, i) =>
        deps.metrics.time("sign", async () => {
          const authorizationList = await signAuthorizations(deps.signer, item.key.path, chain, item.intent, nonces[i]);
          return deps.signer.signTransaction(
            item.key.path,
            buildTransaction(chain, item.intent, nonces[i], item.gas, item.fees, authorizationList),
          );
        }),
      ),
    );

    // 7e. Rows, audit events, token spend and idempotency links: one statement, then COMMIT.
    endCommit = deps.metrics.stageDuration.startTimer({ stage: "commit" });
    const txs = accepted.map((item, i) =>
      signedRow({
        agentId: item.input.principal.agent.id,
        chain,
        from: fromOf(item),
        intent: item.intent,
        nonce: nonces[i],
        gas: item.gas,
        fees: item.fees,
        keyPath: item.key.path,
        status: SIGNED_BY_MODE[item.input.mode].status,
        signedTx: signed[i],
        simulation: item.simulation,
      }),
    );
    const audit = auditRecordset(
      txs.map((t, i) => ({
        action: SIGNED_BY_MODE[accepted[i].input.mode].action,
        actor: accepted[i].input.principal,
        resourceType: "transaction",
        resourceId: t.id,
        details: auditDetails(t, accepted[i].intent),
        requestId: accepted[i].input.requestId,
        ip: accepted[i].input.ip,
      })),
    );
    const rows = await insertTransactionGroup(tx, txs, audit, {
      links: accepted.flatMap((item, i) =>
        item.claim ? [{ agent_id: item.claim.agentId, key_hash: item.claim.keyHash.toString("hex"), tx_id: txs[i].id }] : [],
      ),
      tokenSpend: accepted.flatMap((item, i) =>
        item.outflows.map((o) => ({
          agent_id: item.input.principal.agent.id,
          chain_id: chain.chain_id,
          token: o.token,
          amount: o.amount,
          tx_id: txs[i].id,
        })),
      ),
    });
    return { committed: accepted.map((item, i) => ({ item, row: rows[i] })), denied };
  });
  endCommit();
  return result;
}

/** Requests a group's limits denied: each recorded and answered with its 403, without holding up the group. */
function answerDenied(deps: PipelineDeps, denied: Array<{ item: Queued; denial: Denial }>): void {
  for (const { item, denial } of denied) void deny(deps, item.input, item.intent, item.chain, denial).then(item.reject);
}

/** A group in which the rolling limits denied a request: rolled back, and committed again without it. */
class Regroup extends Error {
  constructor(
    readonly accepted: Queued[],
    readonly denied: Array<{ item: Queued; denial: Denial }>,
  ) {
    super("regroup");
  }
}

/** Fee bounds when neither the chain nor the configuration sets them: 500 gwei, 4 × the current price. */
export const DEFAULT_FEE_BOUNDS: FeeBounds = { maxFeePerGasWei: 500_000_000_000n, priceMultiple: 4 };

/** The chain's own fee bounds (chains.json, /v1/admin/chains), else the service-wide ones. */
export function feeBoundsOf(deps: Pick<PipelineDeps, "config">, chain: Chain): FeeBounds {
  const base = deps.config?.feeBounds ?? DEFAULT_FEE_BOUNDS;
  return {
    maxFeePerGasWei: chain.max_fee_per_gas_gwei != null ? parseUnits(String(chain.max_fee_per_gas_gwei), 9) : base.maxFeePerGasWei,
    priceMultiple: chain.base_fee_multiple != null ? Number(chain.base_fee_multiple) : base.priceMultiple,
  };
}

/** A fee per gas above the chain's ceiling is refused whoever pays: it moves money to the block producer. */
function checkFeeBounds(bounds: FeeBounds, market: FeeMarket, fees: Fees): Denial | null {
  const offered = fees.type === "legacy" ? fees.gasPrice : fees.maxFeePerGas;
  const ceiling = feePerGasCeiling(bounds, market);
  if (offered <= ceiling) return null;
  return {
    reason_code: "fee_per_gas_too_high",
    detail: `A ${fees.type === "legacy" ? "gas price" : "max fee per gas"} of ${offered} wei is above this chain's bound of ${ceiling} wei (the lower of ${bounds.maxFeePerGasWei} wei and ${bounds.priceMultiple} × the current ${market.price} wei).`,
    limit: ceiling.toString(),
    current: market.price.toString(),
    attempted: offered.toString(),
  };
}

function gasDenial(gas: bigint, exceeds: { limit: bigint; why: string }): Denial {
  return {
    reason_code: "gas_limit_exceeded",
    detail: `gas_limit ${gas} is above ${exceeds.limit} (${exceeds.why}).`,
    limit: Number(exceeds.limit),
    current: null,
    attempted: Number(gas),
  };
}

/** SQLSTATE class 22 (data exception) or 23 (integrity constraint violation): about the values, not the database. */
const isDataError = (err: unknown) => /^2[23]/.test(String((err as { code?: unknown })?.code ?? ""));

/** Records the denial (src/pipeline/denials.ts) and builds the 403. */
function deny(deps: PipelineDeps, input: SubmitInput, intent: Intent, chain: Chain, d: Denial): Promise<ServiceError> {
  return recordDenial(deps, d, {
    action: "transaction.denied",
    actor: input.principal,
    details: { chain: chain.name, to: intent.to, value_wei: intent.valueWei.toString(), mode: input.mode },
    requestId: input.requestId,
    ip: input.ip,
  });
}

async function chainCounts(client: ReturnType<ChainClients["get"]>, chain: Chain, address: `0x${string}`): Promise<ChainCounts> {
  try {
    const [latest, pending] = await Promise.all([
      client.getTransactionCount({ address, blockTag: "latest" }),
      client.getTransactionCount({ address, blockTag: "pending" }),
    ]);
    return { latest: BigInt(latest), pending: BigInt(pending) };
  } catch (err) {
    throw rpcFailure(err, `read the nonce on ${chain.name}`);
  }
}

/**
 * The key's transaction row is committed but its answer is not stored (its request is still finishing,
 * or its process died): answer with the row's current state. When the claimant is dead, store it.
 */
async function finishOrphan(deps: PipelineDeps, claim: Claim, txId: string, finish: boolean): Promise<SubmitResult> {
  const row = await getTransaction(deps.pool, txId);
  if (!row) throw idempotencyKeyInFlight();
  const body = JSON.stringify(toTransactionResponse(row, { includeSignedTx: true }));
  if (finish) await completeClaim(deps.pool, claim, 200, body);
  return { status: 200, body };
}
