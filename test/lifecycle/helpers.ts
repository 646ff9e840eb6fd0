// Helpers for the lifecycle tests: anvil controls, polling with deadlines, and reads of the rows the
// tracker writes.
import { createPublicClient, http, type Hex, type PublicClient } from "viem";
import type { Pool } from "../../src/db/pool.js";
import type { TxRow } from "../../src/db/transactions.js";
import type { AttemptRow } from "../../src/db/attempts.js";
import { call, createAgent, type TestAgent } from "../helpers/api.js";
import type { TestService } from "../helpers/service.js";
import { fundedKey, type ServiceHandle, type UseServiceOptions } from "../helpers/use-service.js";

export const DEAD = "0x000000000000000000000000000000000000dEaD";

/**
 * useService() options for an anvil of the test's own with automine off (blocks are mined by the test)
 * and a quick tracker that neither replaces stuck transactions nor fills gaps unless `env` says so.
 */
export function minedByHand(env: Record<string, string> = {}): UseServiceOptions {
  return {
    anvil: { noMining: true },
    env: { TRACKER_INTERVAL_MS: "100", STUCK_AFTER_SECONDS: "3600", GAP_FILL_AFTER_SECONDS: "3600", ...env },
  };
}

/** The agent of useService({ agentKey: true }), with its key's address. */
export const keyedAgent = (svc: ServiceHandle) => svc.agent as TestAgent & { address: Hex; path: string };

export function chainClient(url: string): PublicClient {
  return createPublicClient({ transport: http(url), cacheTime: 0 }) as PublicClient;
}

/** A raw JSON-RPC call (anvil's controls are not in viem's public actions). */
export function rpc<T = unknown>(client: PublicClient, method: string, params: unknown[] = []): Promise<T> {
  return client.request({ method: method as never, params: params as never }) as Promise<T>;
}

export const mine = (client: PublicClient, blocks = 1) =>
  rpc(client, "evm_mine", []).then(async () => {
    for (let i = 1; i < blocks; i++) await rpc(client, "evm_mine", []);
  });

/** Polls `fn` until it returns something truthy; fails with `what` at the deadline. */
export async function waitFor<T>(
  what: string,
  fn: () => Promise<T | undefined | null | false>,
  timeoutMs = 20_000,
  everyMs = 50,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await fn();
      if (v) return v;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}${last ? `: ${(last as Error).message}` : ""}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

export async function txRow(pool: Pool, id: string): Promise<TxRow> {
  const { rows } = await pool.query<TxRow>("SELECT * FROM transactions WHERE id = $1", [id]);
  return rows[0];
}

export async function attemptsOf(pool: Pool, id: string): Promise<AttemptRow[]> {
  const { rows } = await pool.query<AttemptRow>("SELECT * FROM transaction_attempts WHERE tx_id = $1 ORDER BY id", [id]);
  return rows;
}

export async function auditOf(
  pool: Pool,
  id: string,
  action?: string,
): Promise<Array<{ action: string; actor_id: string | null; details: Record<string, unknown> }>> {
  const { rows } = await pool.query(
    `SELECT action, actor_id, details FROM audit_events WHERE resource_id = $1 ${action ? "AND action = $2" : ""} ORDER BY seq`,
    action ? [id, action] : [id],
  );
  return rows;
}

/** Sets the local chain's required confirmations (stored; the registry re-reads it). */
export async function setConfirmations(svc: TestService, n: number): Promise<void> {
  await svc.ctx.pool.query("UPDATE chains SET confirmations = $1 WHERE name = 'local'", [n]);
  await svc.ctx.chains.refresh();
}

/** An agent with its own HSM key on the local chain, funded: its nonces start at 0 and nothing else uses them. */
export async function agentWithKey(
  svc: TestService,
  operatorKey: string,
  client: PublicClient,
): Promise<TestAgent & { address: Hex; path: string }> {
  const agent = await createAgent(svc.app, operatorKey);
  return { ...agent, ...(await fundedKey(svc, agent.id, client)) };
}

/** Submits as `agent` (by default the handle's own agent, read at each call). */
export function submitter(svc: TestService, agent: TestAgent | (() => TestAgent) = () => (svc as ServiceHandle).agent) {
  const who = () => (typeof agent === "function" ? agent() : agent);
  return (body: Record<string, unknown>, headers?: Record<string, string>) =>
    call(svc.app, "POST", `/v1/agents/${who().id}/transactions`, {
      token: who().token,
      body: { chain: "local", to: DEAD, value: "0", ...body },
      headers,
    });
}

export async function byHash(client: PublicClient, hash: string): Promise<{ blockNumber: string | null } | null> {
  return rpc(client, "eth_getTransactionByHash", [hash]);
}

export async function receipt(
  client: PublicClient,
  hash: string,
): Promise<{ status: string; blockNumber: string; blockHash: string } | null> {
  return rpc(client, "eth_getTransactionReceipt", [hash]);
}
