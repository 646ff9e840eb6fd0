// A speed-up of a type-4 transaction (an operator's, or the tracker's fee bump) signs the same
// transaction at higher fees: same nonce, same EIP-7702 authorizations, still type 4, so the account is
// delegated as the agent asked when the replacement mines. Anvil with automine off.
import { concat, encodeDeployData, parseTransaction, type Hex, type PublicClient } from "viem";
import { beforeAll, describe, expect, it } from "vitest";
import { Delegate7702 } from "../contracts/intents.js";
import { call } from "../helpers/api.js";
import { useService } from "../helpers/use-service.js";
import { agentWithKey, mine, minedByHand, receipt, rpc, txRow, waitFor } from "../lifecycle/helpers.js";
import { DEV_KEY } from "../simulation/helpers.js";
import { privateKeyToAccount } from "viem/accounts";
import { ping } from "./helpers.js";

describe("replacing a type-4 transaction", () => {
  const svc = useService(minedByHand());
  const { op } = svc;
  let chain: PublicClient;
  beforeAll(() => {
    chain = svc.chain;
  });

  it("a speed-up keeps the authorization list and the type; the mined replacement delegates the account", async () => {
    // Deploy the delegate with the dev account (blocks are mined by hand here).
    const dev = privateKeyToAccount(DEV_KEY);
    const deployHash = await rpc<Hex>(chain, "eth_sendTransaction", [
      { from: dev.address, data: encodeDeployData({ abi: Delegate7702.abi, bytecode: Delegate7702.bytecode }), gas: "0x200000" },
    ]);
    await mine(chain);
    const delegate = (await chain.getTransactionReceipt({ hash: deployHash })).contractAddress!;

    const agent = await agentWithKey(svc, op, chain);
    await call(svc.app, "PATCH", `/v1/agents/${agent.id}`, {
      token: op,
      body: { eip7702_delegate_allowlist: [delegate], tx_max_gas_limit: 300_000 },
    });
    const r = await call(svc.app, "POST", `/v1/agents/${agent.id}/sign`, {
      token: agent.token,
      body: {
        chain: "local",
        intent_type: "transaction",
        tx_type: 4,
        to: agent.address,
        value: "0",
        data: ping(),
        gas_limit: 200_000,
        authorization_list: [{ address: delegate }],
      },
    });
    expect(r.status, JSON.stringify(r.body)).toBe(200);
    const first = parseTransaction(r.body.signed_tx as Hex);

    const sped = await call(svc.app, "POST", `/v1/transactions/${r.body.id}/speed-up`, { token: op });
    expect(sped.status, JSON.stringify(sped.body)).toBe(200);
    const row = await txRow(svc.ctx.pool, r.body.id);
    expect(row.tx_hash).not.toBe(r.body.tx_hash);
    const second = parseTransaction(row.signed_tx as Hex);
    expect(second.type).toBe("eip7702");
    expect(second.nonce).toBe(first.nonce);
    expect(second.authorizationList).toEqual(first.authorizationList);
    expect(second.maxFeePerGas! > first.maxFeePerGas!).toBe(true);

    await mine(chain);
    await waitFor("the replacement mined", () => receipt(chain, row.tx_hash!));
    expect((await chain.getCode({ address: agent.address }))?.toLowerCase()).toBe(concat(["0xef0100", delegate]).toLowerCase());
  });
});
