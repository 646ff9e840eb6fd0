// The submit pipeline, top to bottom. This is the one file that knows the order of the stages and
// where the database transaction opens and closes:
//
//   validate → idempotency claim → resolve chain and key → static guardrails → (simulate) →
//   read chain state (nonce counts, gas, fees; outside any lock) →
//   BEGIN: lock agent spend row → rolling limits → lock (chain, address) nonce row → reserve nonce →
//          sign in the HSM → insert row + audit event → link idempotency claim  COMMIT →
//   broadcast → record the outcome (+ audit, nonce release on rejection) → store the idempotent response.
//
// A failure before COMMIT leaves nothing behind (no nonce used, no row, claim released). After COMMIT
// the stored row wins: an unknown broadcast outcome stays `signed` and the tracker rebroadcasts it.
import { randomUUID } from "node:crypto";
import { keccak256, type TransactionSerializable } from "viem";
import { appendAudit } from "../audit.js";
import type { Principal } from "../auth/principal.js";
import type { ChainClients } from "../chains/clients.js";
import type { Chain, ChainRegistry } from "../chains/registry.js";
import type { AgentRow } from "../db/agents.js";
import { spendToday, tokenSpendToday } from "../db/agents.js";
import { withTransaction, type Pool } from "../db/pool.js";
import { getTransaction, insertTransaction, type TxRow } from "../db/transactions.js";
import { badRequest, guardrailDenied, ServiceError } from "../errors.js";
import type { Signer, SigningKeyInfo } from "../signer/signer.js";
import type { Logger } from "pino";
import { checkRollingGuardrails, checkStaticGuardrails, hasRollingLimits, policyOf, type Denial } from "./guardrails.js";
import { claimIdempotencyKey, completeClaim, linkClaim, releaseClaim, requestFingerprint, type Claim } from "./idempotency.js";
import { reserveNonce, type ChainCounts } from "./nonce.js";
import { broadcastSigned } from "./broadcast.js";
import { feeColumns, feeFields, resolveFees, resolveGasLimit, type Fees } from "./fees.js";
import { TransactionRequestSchema, toIntent, type Intent } from "./request.js";
import { resolveChain, resolveSigningKey } from "./resolve.js";
import { toTransactionResponse, type TransactionResponse } from "./response.js";
import { rpcFailure } from "./rpc-errors.js";
import type { InflightLimiter } from "./inflight.js";
import { simulateBeforeSigning, type PassedSimulation } from "./simulate.js";
import type { SimulatorRegistry } from "../simulators/index.js";
import type { Metrics } from "../metrics.js";
import { calldataPolicyOf, checkIntentCalldata, recordTokenSpend, simulatedOutflows } from "./token-policy.js";
import { checkTokenOutflows, mergeOutflows } from "./token-guardrails.js";

export interface PipelineDeps {
  pool: Pool;
  signer: Signer;
  chains: ChainRegistry;
  clients: ChainClients;
  log: Logger;
  inflight: InflightLimiter;
  metrics: Metrics;
  /** Simulators for step 5; without them a submission that needs simulation is refused (503). */
  simulators?: SimulatorRegistry;
  config?: { simulateAll?: boolean; testCrashAfterCommit?: boolean };
}

export interface SubmitInput {
  principal: Extract<Principal, { type: "agent" }>;
  body: unknown;
  mode: "submit" | "sign";
  idempotencyKey?: string;
  requestId?: string;
  ip?: string;
}

export interface SubmitResult {
  status: number;
  /** The exact JSON text to send: a replay must be byte-identical to the first answer. */
  body: string;
}

export async function submitTransaction(deps: PipelineDeps, input: SubmitInput): Promise<SubmitResult> {
  const { principal } = input;
  const agent = principal.agent;

  // 1. Validate the body (authentication and the agent id were checked by the route).
  const intent = validate(input.body);

  // 2. Idempotency: claim the key, or replay what it already produced.
  let claim: Claim | undefined;
  if (input.idempotencyKey !== undefined) {
    const claimed = await claimIdempotencyKey(deps.pool, agent.id, input.idempotencyKey, requestFingerprint(input.mode, input.body));
    if (claimed.kind === "replay") return { status: 200, body: claimed.body };
    if (claimed.kind === "orphaned") return finishOrphan(deps, claimed.claim, claimed.txId);
    claim = claimed.claim;
  }

  try {
    // 3. Chain and signing key.
    const chain = resolveChain(deps.chains, intent.chain);
    const policy = policyOf(agent);
    const key = await resolveSigningKey(deps.pool, deps.signer, agent.id, chain, intent.signingKeyPath);

    // 4. Guardrails that need no history.
    const endGuardrails = deps.metrics.stageDuration.startTimer({ stage: "guardrails" });
    const denial = checkStaticGuardrails(policy, { chain, to: intent.to, valueWei: intent.valueWei, data: intent.data });
    endGuardrails();
    if (denial) throw await deny(deps, input, intent, chain, denial);

    // 4b. What the calldata does with tokens: recipient and spender allowlists, per-token amounts,
    //     unlimited approvals, and the agent's policy for calldata nobody can decode.
    const client = deps.clients.get(chain);
    const calldata = await checkIntentCalldata(deps.pool, client, chain, agent, key.address, intent.to, intent.data);
    if (calldata.denial) throw await deny(deps, input, intent, chain, calldata.denial);

    // 5. Simulation before signing: asked for, or forced by the operator (per agent or globally). No
    //    nonce is reserved yet; a failed simulation records a `simulation_failed` row and throws 422.
    let simulation: PassedSimulation | undefined;
    if (intent.simulateFirst || agent.simulate_required || deps.config?.simulateAll || calldata.simulate) {
      if (!deps.simulators) throw new ServiceError("simulation_not_available", 503, "Simulation is not available on this server.");
      simulation = await simulateBeforeSigning(
        { ...deps, simulators: deps.simulators },
        { principal, chain, key, intent, mode: input.mode, requestId: input.requestId, ip: input.ip },
      );
    }
    // Token outflows of the signing address: the larger of what the calldata says and what the
    // simulation saw, so a router or multicall that moves tokens indirectly is still counted.
    const outflows = mergeOutflows(
      calldata.outflows,
      simulation ? await simulatedOutflows(deps.pool, client, chain, key.address, simulation.balanceChanges) : [],
    );
    const tokenLimited = outflows.some((o) => agent.tx_token_limits?.[o.token] !== undefined);

    // Bounded work per signing address: beyond the bound, shed load instead of queueing on the row lock.
    const addressKey = `${chain.chain_id}:${key.address.toLowerCase()}`;
    const release = deps.inflight.acquire(addressKey);
    try {
      // 6. Chain state, read before any lock is taken so no lock is held across an RPC round trip.
      const from = key.address;
      const [counts, gas, fees] = await deps.metrics.time("chain_read", () =>
        Promise.all([
          intent.nonce === undefined ? chainCounts(client, chain, from) : Promise.resolve({ latest: 0n, pending: 0n }),
          resolveGasLimit(chain, client, intent, from),
          resolveFees(chain, client, intent),
        ]),
      );

      // 7. One database transaction: limits, nonce, signature, row, audit.
      let endCommit = () => 0;
      const row = await deps.inflight.exclusive(addressKey, () => withTransaction(deps.pool, async (tx) => {
        const endLockWait = deps.metrics.stageDuration.startTimer({ stage: "lock_wait" });
        if (hasRollingLimits(policy) || tokenLimited) {
          // Serialises this agent's submits, so each sees the spend of those before it.
          await tx.query("SELECT 1 FROM agent_spend_locks WHERE agent_id = $1 FOR UPDATE", [agent.id]);
          const spent = await spendToday(tx, agent.id);
          const rolling = checkRollingGuardrails(policy, intent, { spentWei: spent.spent_wei, countToday: spent.count_today });
          if (rolling) throw new DeniedInTransaction(rolling);
          if (tokenLimited) {
            const tokenSpent = await tokenSpendToday(tx, agent.id);
            const tokenDenial = checkTokenOutflows(calldataPolicyOf(agent), outflows, (t) => tokenSpent.get(t) ?? 0n);
            if (tokenDenial) throw new DeniedInTransaction(tokenDenial);
          }
        }
        const nonce = await reserveNonce(tx, chain.chain_id, from.toLowerCase(), counts, intent.nonce !== undefined ? BigInt(intent.nonce) : undefined);
        endLockWait();
        const unsigned = buildTransaction(chain, intent, nonce, gas, fees);
        const signedTx = await deps.metrics.time("sign", () => deps.signer.signTransaction(key.path, unsigned));
        endCommit = deps.metrics.stageDuration.startTimer({ stage: "commit" });
        const inserted = await insertTransaction(tx, {
          id: randomUUID(),
          agent_id: agent.id,
          chain: chain.name,
          chain_id: chain.chain_id,
          from_address: from.toLowerCase(),
          to_address: intent.to,
          value_wei: intent.valueWei,
          data: intent.data ?? null,
          nonce,
          gas_limit: gas,
          ...feeColumns(fees),
          signing_key_path: key.path,
          status: input.mode === "sign" ? "sign_only" : "signed",
          tx_hash: keccak256(signedTx),
          signed_tx: signedTx,
          error_message: null,
          simulation_id: simulation?.simulationId ?? null,
          simulation_status: simulation?.status ?? null,
          signed_at: new Date(),
        });
        await appendAudit(tx, {
          action: input.mode === "sign" ? "transaction.sign" : "transaction.submit",
          actor: principal,
          resourceType: "transaction",
          resourceId: inserted.id,
          details: auditDetails(inserted),
          requestId: input.requestId,
          ip: input.ip,
        });
        await recordTokenSpend(tx, agent.id, chain.chain_id, inserted.id, outflows);
        if (claim) await linkClaim(tx, claim, inserted.id);
        return inserted;
      })).then((r) => (endCommit(), r)).catch(async (err) => {
        if (err instanceof DeniedInTransaction) throw await deny(deps, input, intent, chain, err.denial);
        throw err;
      });

      // Test-only crash point (INTENTS_TEST_CRASH_AFTER_COMMIT=1 via src/config.ts): die as kill -9 would,
      // after COMMIT and before the broadcast, so tests can show the tracker sends the row once and never signs it twice.
      if (deps.config?.testCrashAfterCommit && input.mode === "submit") process.kill(process.pid, "SIGKILL");

      // 8. Broadcast (submit only).
      const final = input.mode === "submit" ? await deps.metrics.time("broadcast", () => broadcastSigned(deps, chain, row, input)) : row;
      deps.metrics.submissions.inc({ mode: input.mode, status: final.status });

      // 9. The answer, stored for replay unless the transaction failed (failed requests are not cached).
      const status = input.mode === "sign" ? 200 : 201;
      const body = JSON.stringify(toTransactionResponse(final, { includeSignedTx: true }));
      if (claim) {
        if (final.status === "failed") await releaseClaim(deps.pool, claim);
        else await completeClaim(deps.pool, claim, status, body);
      }
      return { status, body };
    } finally {
      release();
    }
  } catch (err) {
    if (claim) await releaseClaim(deps.pool, claim).catch(() => {});
    throw err;
  }
}

function validate(body: unknown): Intent {
  const parsed = TransactionRequestSchema.safeParse(body);
  if (!parsed.success) {
    const errors = parsed.error.issues.map((i) => ({
      field: i.path.join(".") || ((i as { keys?: string[] }).keys?.join(", ") ?? "body"),
      message: i.code === "unrecognized_keys" ? `unknown field(s): ${(i as { keys: string[] }).keys.join(", ")}` : i.message,
    }));
    throw badRequest(`Invalid transaction request: ${errors.slice(0, 5).map((e) => `${e.field}: ${e.message}`).join("; ")}`, errors);
  }
  return toIntent(parsed.data);
}

class DeniedInTransaction extends Error {
  constructor(readonly denial: Denial) {
    super(denial.detail);
  }
}

/** Records the denial (its own small transaction: the denied request itself wrote nothing) and builds the 403. */
async function deny(deps: PipelineDeps, input: SubmitInput, intent: Intent, chain: Chain, d: Denial): Promise<ServiceError> {
  await appendAudit(deps.pool, {
    action: "transaction.denied",
    actor: input.principal,
    resourceType: "agent",
    resourceId: input.principal.id,
    details: { reason_code: d.reason_code, chain: chain.name, to: intent.to, value_wei: intent.valueWei.toString(), mode: input.mode },
    requestId: input.requestId,
    ip: input.ip,
  }).catch((err) => deps.log.error({ err }, "could not record a guardrail denial"));
  deps.metrics.guardrailDenials.inc({ rule: d.reason_code });
  const { detail, ...guardrail } = d;
  return guardrailDenied(detail, guardrail);
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

function buildTransaction(chain: Chain, intent: Intent, nonce: bigint, gas: bigint, fees: Fees): TransactionSerializable {
  return { chainId: chain.chain_id, nonce: Number(nonce), to: intent.to, value: intent.valueWei, data: intent.data, gas, ...feeFields(fees) };
}

function auditDetails(row: TxRow): Record<string, unknown> {
  return {
    chain: row.chain,
    chain_id: Number(row.chain_id),
    from: row.from_address,
    to: row.to_address,
    value_wei: row.value_wei,
    nonce: row.nonce === null ? null : Number(row.nonce),
    tx_hash: row.tx_hash,
    signing_key_path: row.signing_key_path,
    status: row.status,
  };
}

// broadcastSigned moved to ./broadcast.js (shared with the tracker); re-exported for existing importers.
export { broadcastSigned };

/** The claimant of this key died after committing the signed row: answer from the row and finish. */
async function finishOrphan(deps: PipelineDeps, claim: Claim, txId: string): Promise<SubmitResult> {
  const row = await getTransaction(deps.pool, txId);
  if (!row) throw new ServiceError("idempotency_key_in_flight", 409, "A request with this Idempotency-Key is still in flight; retry later.");
  const body = JSON.stringify(toTransactionResponse(row, { includeSignedTx: true }));
  await completeClaim(deps.pool, claim, 200, body);
  return { status: 200, body };
}

export type { AgentRow, SigningKeyInfo, TransactionResponse };
