// Shared by the signing-intent tests: the service with anvil (Prague, so type-4 transactions work),
// the USDC-like token, Permit2 at its canonical address and an EIP-7702 delegate, and agents with
// their own funded HSM key holding tokens.
import { encodeFunctionData, type Address, type Hex } from "viem";
import { recordSigningKey } from "../../src/db/signing-keys.js";
import { PERMIT2_ADDRESS } from "../../src/pipeline/typed-data.js";
import { Delegate7702, IntentToken, MiniPermit2 } from "../contracts/intents.js";
import { beforeAll } from "vitest";
import { call, createAgent, type Res, type TestAgent } from "../helpers/api.js";
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
    async agent(fields = {}, tokens = 1_000n) {
      const agent = await createAgent(svc.app, op, fields);
      const key = await svc.ctx.signer.createKey(`agents/${agent.id}/chains/local`);
      await recordSigningKey(svc.ctx.pool, key, { chain: "local", agentId: agent.id });
      await s.dev.setBalance(key.address, 10n ** 20n);
      if (tokens > 0n) await s.dev.send(s.token, IntentToken.abi, "mint", [key.address, tokens * UNIT]);
      return { ...agent, address: key.address };
    },
    sign: (a, body, headers) =>
      call(svc.app, "POST", `/v1/agents/${a.id}/sign`, { token: a.token, body: { chain: "local", ...body }, headers }),
    balance: (who) =>
      s.dev.pub.readContract({ address: s.token, abi: IntentToken.abi, functionName: "balanceOf", args: [who] }) as Promise<bigint>,
    now: async () => (await s.dev.pub.getBlock()).timestamp,
  };
  beforeAll(async () => {
    s.dev = devClients(svc.ctx.localChainUrl!);
    s.token = await s.dev.deploy(IntentToken as never, ["USD Coin", "USDC"]);
    s.delegate = await s.dev.deploy(Delegate7702 as never);
    await s.dev.pub.request({ method: "anvil_setCode" as never, params: [PERMIT2, MiniPermit2.deployedBytecode] as never });
  });
  return s;
}

/** EIP-3009 TransferWithAuthorization typed data, as an x402 client builds it. */
export function transferWithAuthorization(
  token: Address,
  from: Address,
  to: Address,
  value: bigint,
  validBefore: bigint,
  nonce: Hex,
  primaryType = "TransferWithAuthorization",
) {
  return {
    types: {
      EIP712Domain: [
        { name: "name", type: "string" },
        { name: "version", type: "string" },
        { name: "chainId", type: "uint256" },
        { name: "verifyingContract", type: "address" },
      ],
      [primaryType]: [
        { name: "from", type: "address" },
        { name: "to", type: "address" },
        { name: "value", type: "uint256" },
        { name: "validAfter", type: "uint256" },
        { name: "validBefore", type: "uint256" },
        { name: "nonce", type: "bytes32" },
      ],
    },
    primaryType,
    domain: { name: "USD Coin", version: "2", chainId: 31337, verifyingContract: token },
    message: { from, to, value: value.toString(), validAfter: "0", validBefore: validBefore.toString(), nonce },
  };
}

/** EIP-2612 Permit typed data. */
export function permit(token: Address, owner: Address, spender: Address, value: bigint, nonce: bigint, deadline: bigint) {
  return {
    types: {
      Permit: [
        { name: "owner", type: "address" },
        { name: "spender", type: "address" },
        { name: "value", type: "uint256" },
        { name: "nonce", type: "uint256" },
        { name: "deadline", type: "uint256" },
      ],
    },
    primaryType: "Permit",
    domain: { name: "USD Coin", version: "2", chainId: 31337, verifyingContract: token },
    message: { owner, spender, value: value.toString(), nonce: nonce.toString(), deadline: deadline.toString() },
  };
}

const PERMIT_DETAILS = [
  { name: "token", type: "address" },
  { name: "amount", type: "uint160" },
  { name: "expiration", type: "uint48" },
  { name: "nonce", type: "uint48" },
];

/** Permit2 PermitSingle typed data (AllowanceTransfer). */
export function permitSingle(token: Address, spender: Address, amount: bigint, expiration: bigint, nonce: bigint, sigDeadline: bigint) {
  return {
    types: {
      PermitSingle: [
        { name: "details", type: "PermitDetails" },
        { name: "spender", type: "address" },
        { name: "sigDeadline", type: "uint256" },
      ],
      PermitDetails: PERMIT_DETAILS,
    },
    primaryType: "PermitSingle",
    domain: { name: "Permit2", chainId: 31337, verifyingContract: PERMIT2 },
    message: {
      details: { token, amount: amount.toString(), expiration: expiration.toString(), nonce: nonce.toString() },
      spender,
      sigDeadline: sigDeadline.toString(),
    },
  };
}

/** Permit2 PermitTransferFrom typed data (SignatureTransfer). */
export function permitTransferFrom(token: Address, spender: Address, amount: bigint, nonce: bigint, deadline: bigint) {
  return {
    types: {
      PermitTransferFrom: [
        { name: "permitted", type: "TokenPermissions" },
        { name: "spender", type: "address" },
        { name: "nonce", type: "uint256" },
        { name: "deadline", type: "uint256" },
      ],
      TokenPermissions: [
        { name: "token", type: "address" },
        { name: "amount", type: "uint256" },
      ],
    },
    primaryType: "PermitTransferFrom",
    domain: { name: "Permit2", chainId: 31337, verifyingContract: PERMIT2 },
    message: { permitted: { token, amount: amount.toString() }, spender, nonce: nonce.toString(), deadline: deadline.toString() },
  };
}

export const ping = () => encodeFunctionData({ abi: Delegate7702.abi, functionName: "ping" });
