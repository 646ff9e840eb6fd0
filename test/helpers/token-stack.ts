// Tokens on the service's own anvil: agents with their own funded HSM key holding a test token, and
// useTokenStack(), the service with the 6-decimal TestToken and the Router (which spends allowances) deployed.
import type { Abi, Address } from "viem";
import { beforeAll } from "vitest";
import { recordSigningKey } from "../../src/db/signing-keys.js";
import { Router, TestToken } from "../contracts/index.js";
import { devClients } from "../simulation/helpers.js";
import { createAgent, type TestAgent } from "./api.js";
import type { TestService } from "./service.js";
import { useService, type ServiceHandle } from "./use-service.js";

export type DevClients = ReturnType<typeof devClients>;

/** An agent with its own key on the local chain, 100 ETH for gas, and `amount` base units of `token` minted to it. */
export async function agentHolding(
  svc: TestService,
  op: string,
  dev: DevClients,
  token: { address: Address; abi: Abi },
  fields: Record<string, unknown>,
  amount: bigint,
): Promise<TestAgent & { address: Address }> {
  const agent = await createAgent(svc.app, op, fields);
  const key = await svc.ctx.signer.createKey(`agents/${agent.id}/chains/local`);
  await recordSigningKey(svc.ctx.pool, key, { chain: "local", agentId: agent.id });
  await dev.setBalance(key.address, 10n ** 20n);
  if (amount > 0n) await dev.send(token.address, token.abi, "mint", [key.address, amount]);
  return { ...agent, address: key.address };
}

export const UNIT = 10n ** 6n; // the test token has 6 decimals

export interface TokenStack {
  svc: ServiceHandle;
  op: string;
  dev: DevClients;
  token: Address;
  router: Address;
  /** An agent with its own funded key holding `tokens` whole units of the test token. */
  agentWithTokens(fields: Record<string, unknown>, tokens?: bigint): Promise<TestAgent & { address: Address }>;
}

/** The stack, started before the file's (or describe's) tests and stopped after them; its fields exist once beforeAll has run. */
export function useTokenStack(): TokenStack {
  const svc = useService({ env: { TRACKER: "off" } });
  const s: TokenStack = {
    svc,
    op: svc.op,
    dev: undefined as never,
    token: undefined as never,
    router: undefined as never,
    agentWithTokens: (fields, tokens = 1_000_000n) =>
      agentHolding(svc, svc.op, s.dev, { address: s.token, abi: TestToken.abi as Abi }, fields, tokens * UNIT),
  };
  beforeAll(async () => {
    s.dev = devClients(svc.ctx.localChainUrl!);
    s.token = await s.dev.deploy(TestToken, ["USD Coin", "USDC"]);
    s.router = await s.dev.deploy(Router);
  });
  return s;
}
