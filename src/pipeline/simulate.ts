// The simulation stage. Takes: the agent principal, a chain, the sender's signing key and one or more
// intents. Returns the reference SimulationResponse per intent (a revert is a result with status
// "reverted", a simulator failure one with status "error"; neither is an exception). Writes one
// `transaction.simulate` audit event per simulated call. Takes no lock and uses no nonce: simulators
// run on a fork or a read-only node, never on the chain's real state.
//
// Entry points:
// - simulateTransactionRequest / simulateBundleRequest: the two simulate routes (the route parsed the
//   body; resolve the chain and key like submit does, simulate, audit).
// - simulateBeforeSigning: step 5 of the submit pipeline. On anything but success it records the
//   transaction as `simulation_failed` (no nonce, nothing signed, not counted toward limits) with its
//   audit event, and throws a 422 whose body carries the transaction fields.
import { randomUUID } from "node:crypto";
import type { Logger } from "pino";
import { appendAudit } from "../db/audit.js";
import type { Principal } from "../auth/principal.js";
import type { Chain, ChainRegistry } from "../chains/registry.js";
import { withTransaction, type Pool } from "../db/pool.js";
import { insertTransaction } from "../db/transactions.js";
import { requestedFeeColumns } from "./rows.js";
import { badRequest, simulationFailed } from "../errors.js";
import { denied } from "./denials.js";
import type { Signer, SigningKeyInfo } from "../signer/signer.js";
import type { SimCall, SimResult, SimulatorKind, SimulatorRegistry } from "../simulators/index.js";
import { checkChainAllowed, policyOf } from "./guardrails.js";
import type { Intent, SimulationIntent } from "./request.js";
import { resolveChain, resolveSigningKey, type KeyAccessCache } from "./resolve.js";
import { toTransactionResponse } from "./response.js";

type AgentPrincipal = Extract<Principal, { type: "agent" }>;

/** The reference SimulationResponse (its zod schema, for the routes: src/http/schemas/transactions.ts). */
export interface SimulationResponse {
  simulation_id: string;
  status: "success" | "reverted" | "error";
  gas_used: number;
  balance_changes: Array<{ address: string; token: string; token_symbol: string; before?: string; after?: string; change: string }>;
  revert_reason?: string;
  error?: string;
  tenderly_dashboard_url?: string;
  simulated_at: string;
}
export interface BundleSimulationResponse {
  simulations: SimulationResponse[];
}

export interface SimulationDeps {
  pool: Pool;
  signer: Signer;
  chains: ChainRegistry;
  simulators: SimulatorRegistry;
  log: Logger;
  keyAccess?: KeyAccessCache;
}

// ---------------------------------------------------------------------------------------------------
// The routes

export interface SimulateRequestInput {
  principal: AgentPrincipal;
  /** The calls, parsed by the route (src/http/intents.ts). */
  requests: SimulationIntent[];
  requestId?: string;
  ip?: string;
}

export async function simulateTransactionRequest(deps: SimulationDeps, input: SimulateRequestInput): Promise<SimulationResponse> {
  const { chain, calls } = await prepare(deps, input.principal, input.requests);
  const [res] = await simulateAndAudit(deps, { ...input, chain, calls, mode: "simulate" });
  return res!;
}

export async function simulateBundleRequest(deps: SimulationDeps, input: SimulateRequestInput): Promise<BundleSimulationResponse> {
  const { chain, calls } = await prepare(deps, input.principal, input.requests);
  return { simulations: await simulateAndAudit(deps, { ...input, chain, calls, mode: "simulate_bundle" }) };
}

interface PreparedCall {
  call: SimCall;
  keyPath: string;
}

/** Resolves chain and keys as submit does (400 unknown chain, 403 disallowed chain or path, 404 no key). */
async function prepare(
  deps: SimulationDeps,
  principal: AgentPrincipal,
  reqs: SimulationIntent[],
): Promise<{ chain: Chain; calls: PreparedCall[] }> {
  const chain = resolveChain(deps.chains, reqs[0]!.chain);
  reqs.forEach((r, i) => {
    if (i > 0 && deps.chains.resolve(r.chain)?.name !== chain.name) {
      throw badRequest("All transactions of a bundle must be on one chain.", [
        { field: `transactions.${i}.chain`, message: `must be the same chain as transactions.0 (${chain.name})` },
      ]);
    }
  });
  const policy = policyOf(principal.agent);
  const chainDenial = checkChainAllowed(policy, chain);
  if (chainDenial) throw denied(chainDenial);
  const keys = new Map<string, Promise<SigningKeyInfo>>();
  const calls: PreparedCall[] = [];
  for (const r of reqs) {
    const k = r.signingKeyPath ?? "";
    if (!keys.has(k)) keys.set(k, resolveSigningKey(deps.pool, deps.signer, principal.agent, chain, r.signingKeyPath, deps.keyAccess));
    const key = await keys.get(k)!;
    calls.push({ keyPath: key.path, call: { from: key.address, to: r.to, value: r.valueWei, data: r.data, gas: r.gasLimit } });
  }
  return { chain, calls };
}

// ---------------------------------------------------------------------------------------------------
// The stage

type Mode = "simulate" | "simulate_bundle" | "submit" | "sign";

interface Ran {
  kind: SimulatorKind;
  results: SimResult[];
  responses: SimulationResponse[];
  ms: number;
}

/**
 * Runs the calls on the chain's simulator, in the agent's turn of the chain's fair queue. Never
 * throws for a failed simulation; throws 503 (Retry-After) when the queue is full for this agent or
 * for everyone, before any work.
 */
function execute(deps: SimulationDeps, agentId: string, chain: Chain, calls: SimCall[]): Promise<Ran> {
  return deps.simulators.queue(chain).run(agentId, () => executeNow(deps, chain, calls));
}

async function executeNow(deps: SimulationDeps, chain: Chain, calls: SimCall[]): Promise<Ran> {
  const simulator = deps.simulators.forChain(chain);
  const t = performance.now();
  let results: SimResult[];
  try {
    results = await simulator.simulate(chain, calls);
  } catch (err) {
    deps.log.error({ err, chain: chain.name, simulator: simulator.kind }, "simulator failed");
    results = calls.map(() => ({
      id: randomUUID(),
      status: "error" as const,
      balanceChanges: [],
      error: "The simulator failed unexpectedly.",
    }));
  }
  const simulatedAt = new Date().toISOString();
  return { kind: simulator.kind, results, responses: results.map((r) => toSimulationResponse(r, simulatedAt)), ms: performance.now() - t };
}

export function toSimulationResponse(r: SimResult, simulatedAt: string): SimulationResponse {
  // Key order as in the reference: id, status, gas_used, balance_changes, reasons, url, time.
  const out: SimulationResponse = { simulation_id: r.id, status: r.status } as SimulationResponse;
  // Always a number (the SDK types it as required): 0 when the simulator could not run the call.
  out.gas_used = r.gasUsed !== undefined ? Number(r.gasUsed) : 0;
  out.balance_changes = r.balanceChanges;
  if (r.revertReason !== undefined) out.revert_reason = r.revertReason;
  if (r.error !== undefined) out.error = r.error;
  if (r.dashboardUrl !== undefined) out.tenderly_dashboard_url = r.dashboardUrl;
  out.simulated_at = simulatedAt;
  return out;
}

function auditDetails(
  chain: Chain,
  c: PreparedCall,
  res: SimulationResponse,
  kind: SimulatorKind,
  mode: Mode,
  extra: Record<string, unknown> = {},
): Record<string, unknown> {
  return {
    mode,
    simulator: kind,
    chain: chain.name,
    chain_id: chain.chain_id,
    from: c.call.from.toLowerCase(),
    to: c.call.to,
    value_wei: c.call.value.toString(),
    signing_key_path: c.keyPath,
    simulation_id: res.simulation_id,
    status: res.status,
    gas_used: res.gas_used ?? null,
    revert_reason: res.revert_reason ?? null,
    error: res.error ?? null,
    ...extra,
  };
}

async function simulateAndAudit(
  deps: SimulationDeps,
  args: { principal: AgentPrincipal; chain: Chain; calls: PreparedCall[]; mode: Mode; requestId?: string; ip?: string },
): Promise<SimulationResponse[]> {
  const ran = await execute(
    deps,
    args.principal.agent.id,
    args.chain,
    args.calls.map((c) => c.call),
  );
  deps.log.debug({ chain: args.chain.name, simulator: ran.kind, calls: args.calls.length, ms: Math.round(ran.ms) }, "simulated");
  await withTransaction(deps.pool, async (tx) => {
    for (const [i, c] of args.calls.entries()) {
      const res = ran.responses[i]!;
      await appendAudit(tx, {
        action: "transaction.simulate",
        actor: args.principal,
        resourceType: "simulation",
        resourceId: res.simulation_id,
        details: auditDetails(
          args.chain,
          c,
          res,
          ran.kind,
          args.mode,
          args.calls.length > 1 ? { bundle_index: i, bundle_size: args.calls.length } : {},
        ),
        requestId: args.requestId,
        ip: args.ip,
      });
    }
  });
  return ran.responses;
}

// ---------------------------------------------------------------------------------------------------
// Before signing (submit pipeline step 5)

export interface SimulateBeforeSigningInput {
  principal: AgentPrincipal;
  chain: Chain;
  key: SigningKeyInfo;
  intent: Intent;
  mode: "submit" | "sign";
  requestId?: string;
  ip?: string;
}

export interface PassedSimulation {
  simulationId: string;
  status: "success";
  /** What the transaction did to balances in the simulation (token guardrails read the sender's). */
  balanceChanges: Array<{ address: string; token: string; change: string }>;
  /** The simulated transaction's logs, when the simulator reports them (undefined: it does not). */
  logs?: Array<{ address: string; topics: readonly string[]; data: string }>;
}

/**
 * Simulates the intent as it would be signed (its gas limit and fee fields, when given). Success:
 * audited, and the id and status returned for the signed row. Anything else: a `simulation_failed`
 * row and its audit event in one database transaction, then a 422 carrying the transaction fields.
 */
export async function simulateBeforeSigning(deps: SimulationDeps, input: SimulateBeforeSigningInput): Promise<PassedSimulation> {
  const { chain, key, intent } = input;
  const prepared: PreparedCall = {
    keyPath: key.path,
    call: {
      from: key.address,
      to: intent.to,
      value: intent.valueWei,
      data: intent.data,
      gas: intent.gasLimit,
      gasPrice: intent.gasPrice,
      maxFeePerGas: intent.maxFeePerGas,
      maxPriorityFeePerGas: intent.maxPriorityFeePerGas,
    },
  };
  const ran = await execute(deps, input.principal.agent.id, chain, [prepared.call]);
  const res = ran.responses[0]!;

  if (res.status === "success") {
    await appendAudit(deps.pool, {
      action: "transaction.simulate",
      actor: input.principal,
      resourceType: "simulation",
      resourceId: res.simulation_id,
      details: auditDetails(chain, prepared, res, ran.kind, input.mode),
      requestId: input.requestId,
      ip: input.ip,
    });
    return { simulationId: res.simulation_id, status: "success", balanceChanges: res.balance_changes, logs: ran.results[0]?.logs };
  }

  const reason = res.status === "reverted" ? (res.revert_reason ?? "execution reverted") : (res.error ?? "the simulation failed");
  const row = await withTransaction(deps.pool, async (tx) => {
    // Never signed, never sent: it spends nothing and must not count toward the agent's limits.
    const inserted = await insertTransaction(tx, {
      id: randomUUID(),
      agent_id: input.principal.agent.id,
      chain: chain.name,
      chain_id: chain.chain_id,
      from_address: key.address.toLowerCase(),
      to_address: intent.to,
      value_wei: intent.valueWei,
      data: intent.data ?? null,
      nonce: null,
      gas_limit: intent.gasLimit ?? null,
      ...requestedFeeColumns(intent),
      signing_key_path: key.path,
      status: "simulation_failed",
      tx_hash: null,
      signed_tx: null,
      error_message: `Simulation ${res.status}: ${reason}`.slice(0, 1000),
      simulation_id: res.simulation_id,
      simulation_status: res.status,
      signed_at: null,
      counts_toward_limits: false,
    });
    await appendAudit(tx, {
      action: "transaction.simulate",
      actor: input.principal,
      resourceType: "transaction",
      resourceId: inserted.id,
      details: auditDetails(chain, prepared, res, ran.kind, input.mode, { transaction_status: "simulation_failed" }),
      requestId: input.requestId,
      ip: input.ip,
    });
    return inserted;
  });

  const detail =
    res.status === "reverted"
      ? `Simulation reverted: ${reason}. The transaction was not signed.`
      : `Simulation could not run: ${reason}. The transaction was not signed.`;
  const extra: Record<string, unknown> = { ...toTransactionResponse(row, { includeSignedTx: false }) };
  if (res.tenderly_dashboard_url) extra.tenderly_dashboard_url = res.tenderly_dashboard_url;
  extra.simulation = res;
  throw simulationFailed(detail, extra);
}
