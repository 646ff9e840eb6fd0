// Shared by the signing-intent tests: the service with anvil (Prague, so type-4 transactions work),
// the USDC-like token, Permit2 at its canonical address and an EIP-7702 delegate, and agents with
// their own funded HSM key holding tokens.
import { encodeFunctionData, hexToSignature, type Abi, type Address, type Hex } from "viem";
import { PERMIT2_ADDRESS } from "../../src/pipeline/typed-data.js";
import { Delegate7702, IntentToken, MiniPermit2 } from "../contracts/intents.js";
import { beforeAll } from "vitest";
import { call, type Res, type TestAgent } from "../helpers/api.js";
import { agentHolding } from "../helpers/token-stack.js";
import { transferWithAuthorization } from "../helpers/typed-data.js";
import { useService, type ServiceHandle } from "../helpers/use-service.js";
import { devClients } from "../simulation/helpers.js";

export const UNIT = 10n ** 6n;
export const PERMIT2 = PERMIT2_ADDRESS as Address;

export interface IntentStack {
  svc: ServiceHandle;
  dev: ReturnType<typeof devClients>;
  op: string;
  token: Address;
  delegate: Address;
  agent(fields?: Record<string, unknown>, tokens?: bigint): Promise<TestAgent & { address: Address }>;
  sign(a: TestAgent, body: Record<string, unknown>, headers?: Record<string, string>): Promise<Res<any>>;
  balance(who: Address): Promise<bigint>;
  now(): Promise<bigint>;
  /** Redeems a signed EIP-3009 authorization (transferWithAuthorization typed data) at the token, as a facilitator would. */
  redeem(td: ReturnType<typeof transferWithAuthorization>, signature: Hex): Promise<void>;
}

/** The stack, started before the file's (or describe's) tests and stopped after them; its fields exist once beforeAll has run. */
export function useIntentStack(opts: { listen?: boolean } = {}): IntentStack {
  const svc = useService({ env: { TRACKER: "off" }, ...opts });
  const { op } = svc;
  const s: IntentStack = {
    svc,
    op,
    dev: undefined as never,
    token: undefined as never,
    delegate: undefined as never,
    agent: (fields = {}, tokens = 1_000n) =>
      agentHolding(svc, op, s.dev, { address: s.token, abi: IntentToken.abi as Abi }, fields, tokens * UNIT),
    sign: (a, body, headers) =>
      call(svc.app, "POST", `/v1/agents/${a.id}/sign`, { token: a.token, body: { chain: "local", ...body }, headers }),
    balance: (who) =>
      s.dev.pub.readContract({ address: s.token, abi: IntentToken.abi, functionName: "balanceOf", args: [who] }) as Promise<bigint>,
    now: async () => (await s.dev.pub.getBlock()).timestamp,
    async redeem(td, signature) {
      const sig = hexToSignature(signature);
      const m = td.message;
      await s.dev.send(s.token, IntentToken.abi, "transferWithAuthorization", [
        m.from,
        m.to,
        BigInt(m.value),
        0n,
        BigInt(m.validBefore),
        m.nonce,
        Number(sig.v),
        sig.r,
        sig.s,
      ]);
    },
  };
  beforeAll(async () => {
    s.dev = devClients(svc.ctx.localChainUrl!);
    s.token = await s.dev.deploy(IntentToken as never, ["USD Coin", "USDC"]);
    s.delegate = await s.dev.deploy(Delegate7702 as never);
    await s.dev.pub.request({ method: "anvil_setCode" as never, params: [PERMIT2, MiniPermit2.deployedBytecode] as never });
  });
  return s;
}

export { permit, permitSingle, permitTransferFrom, transferWithAuthorization } from "../helpers/typed-data.js";

export const ping = () => encodeFunctionData({ abi: Delegate7702.abi, functionName: "ping" });

/** A type-4 transaction intent in which `account` delegates itself to `delegate` and calls its ping(). */
export const delegation = (account: Address, delegate: Address) => ({
  intent_type: "transaction",
  tx_type: 4,
  to: account,
  value: "0",
  data: ping(),
  authorization_list: [{ address: delegate }],
});
