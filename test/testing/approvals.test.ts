// The testing kit with human approvals and signing intents: an agent whose approval rules hold every
// request submits through the official SDK, gets 202, the kit's operator key approves, the
// transaction is mined and a replay of the same Idempotency-Key answers it; a typed-data intent
// through the SDK's agents.sign() waits the same way and is signed by the agent's HSM key once approved.
import { createPublicClient, http, parseEther, recoverTypedDataAddress, verifyMessage, type Hex } from "viem";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startSigner, type KitAgent, type KitSigningKey, type Signer } from "intents-signer/testing";
import { createClient } from "../../../shared/vendor/1claw-sdk/dist/index.js";

const DEAD = "0x000000000000000000000000000000000000dEaD";

describe("testing kit with approvals and signing intents", () => {
  let kit: Signer;
  let agent: KitAgent;
  let key: KitSigningKey;
  let sdk: ReturnType<typeof createClient>;
  const txCount = async () =>
    (await kit.request<{ transactions: unknown[] }>("GET", `/v1/agents/${agent.id}/transactions`, undefined, agent.token)).transactions
      .length;

  beforeAll(async () => {
    kit = await startSigner();
    agent = await kit.createAgent({ name: "probation" });
    key = await kit.createSigningKey({ chain: "local", agentId: agent.id, fund: parseEther("1") });
    await kit.setApprovalRules(agent.id, { everything: true });
    sdk = createClient({ baseUrl: kit.url, apiKey: agent.apiKey, agentId: agent.id });
  }, 120_000);
  afterAll(async () => kit?.stop());

  it("the rules are set through the kit and read back by the agent", async () => {
    const rules = await kit.request("GET", `/v1/agents/${agent.id}/approval-rules`, undefined, agent.token);
    expect(rules.approval_rules).toMatchObject({ everything: true });
  });

  it("a transaction submitted through the SDK waits (202); the kit approves it; it is mined; a replay answers that one transaction", async () => {
    const held = await sdk.agents.submitTransaction(agent.id, { to: DEAD, value: "0.01", chain: "local" }, { idempotencyKey: "kit-pay-1" });
    expect(held.error).toBeNull();
    expect(held.meta?.status).toBe(202);
    const pending = held.data as unknown as { pending_approval_id: string; status: string };
    expect(pending.status).toBe("pending_approval");
    expect(await txCount()).toBe(0);

    const approval = await kit.approve(pending.pending_approval_id, { reason: "test run" });
    expect(approval).toMatchObject({ id: pending.pending_approval_id, status: "executed", current_approvals: 1 });
    const tx = approval.result!;
    const chain = createPublicClient({ transport: http(kit.chains[0]!.rpcUrl) });
    const receipt = await chain.waitForTransactionReceipt({ hash: tx.tx_hash as Hex });
    expect(receipt.status).toBe("success");
    expect(receipt.from).toBe(key.address.toLowerCase());

    const replay = await sdk.agents.submitTransaction(
      agent.id,
      { to: DEAD, value: "0.01", chain: "local" },
      { idempotencyKey: "kit-pay-1" },
    );
    expect(replay.meta?.status).toBe(201);
    expect(replay.data).toMatchObject({ id: tx.id, tx_hash: tx.tx_hash });
    expect(await txCount()).toBe(1);
  });

  it("a rejected transaction is never signed", async () => {
    const held = await sdk.agents.submitTransaction(agent.id, { to: DEAD, value: "0.02", chain: "local" });
    expect(held.meta?.status).toBe(202);
    const id = (held.data as unknown as { pending_approval_id: string }).pending_approval_id;
    expect(await kit.approve(id, { decision: "reject", reason: "not today" })).toMatchObject({ status: "rejected", result: null });
    expect(await txCount()).toBe(1);
  });

  it("typed data and personal_sign through agents.sign() wait, and are signed by the agent's key once approved", async () => {
    const typedData = {
      types: {
        EIP712Domain: [
          { name: "name", type: "string" },
          { name: "chainId", type: "uint256" },
        ],
        Order: [
          { name: "id", type: "uint256" },
          { name: "note", type: "string" },
        ],
      },
      primaryType: "Order",
      domain: { name: "Kit Shop", chainId: kit.chains[0]!.chainId },
      message: { id: "7", note: "one coffee" },
    };
    const held = await sdk.agents.sign(agent.id, { chain: "local", intent_type: "typed_data", typed_data: typedData } as never);
    expect(held.error).toBeNull();
    expect(held.meta?.status).toBe(202);
    const id = (held.data as unknown as { pending_approval_id: string }).pending_approval_id;
    const approval = await kit.approve(id);
    expect(approval.status).toBe("executed");
    const signature = approval.result!.signature as Hex;
    const { EIP712Domain: _, ...types } = typedData.types;
    expect(
      await recoverTypedDataAddress({
        domain: typedData.domain,
        types,
        primaryType: "Order",
        message: { id: 7n, note: "one coffee" },
        signature,
      }),
    ).toBe(key.address);

    const message = await sdk.agents.sign(agent.id, { chain: "local", intent_type: "personal_sign", message: "gm, approved" } as never);
    expect(message.meta?.status).toBe(202);
    const msgApproval = await kit.approve((message.data as unknown as { pending_approval_id: string }).pending_approval_id);
    expect(msgApproval.status).toBe("executed");
    expect(await verifyMessage({ address: key.address, message: "gm, approved", signature: msgApproval.result!.signature as Hex })).toBe(
      true,
    );
  });
});
