// The official 1Claw SDK (../shared/vendor/1claw-sdk, imported from outside the repo, never copied)
// calls `agents.sign()` against the service over real HTTP, for each intent type.
import path from "node:path";
import { pathToFileURL } from "node:url";
import { keccak256, parseTransaction, recoverAddress, toHex, verifyMessage, verifyTypedData, type Address, type Hex } from "viem";
import { beforeAll, describe, expect, it } from "vitest";
import { call } from "../helpers/api.js";
import { assertMatchesReference } from "../helpers/reference.js";
import { delegation, transferWithAuthorization, UNIT, useIntentStack } from "./helpers.js";

const SDK = path.resolve(import.meta.dirname, "../../../shared/vendor/1claw-sdk/dist/index.js");
const PAYEE = "0x00000000000000000000000000000000000a11ce" as Address;

describe("official SDK: agents.sign()", () => {
  const s = useIntentStack({ listen: true });
  let baseUrl: string;
  let OneclawClient: new (config: Record<string, unknown>) => any;
  beforeAll(async () => {
    baseUrl = s.svc.baseUrl;
    ({ OneclawClient } = await import(pathToFileURL(SDK).href));
  });

  it("signs a message, typed data, a digest and transactions of types 0, 1, 2 and 4; a denial comes back as an error", async () => {
    const a = await s.agent({ raw_signing_enabled: true, eip7702_delegate_allowlist: [s.delegate] });
    // Recipients: the payee, and the key's own (delegated) account for the type-4 call.
    await call(s.svc.app, "PATCH", `/v1/agents/${a.id}`, {
      token: s.op,
      body: { tx_to_allowlist: [PAYEE, a.address], tx_unknown_calldata: "allow" },
    });
    const client = new OneclawClient({ baseUrl, apiKey: a.apiKey, agentId: a.id });
    const sign = async (params: Record<string, unknown>) => {
      const res = await client.agents.sign(a.id, { chain: "local", ...params });
      expect(res.error, JSON.stringify(res.error)).toBeNull();
      assertMatchesReference("SignIntentResponse", res.data);
      expect(res.data.from).toBe(a.address);
      return res.data;
    };

    const message = await sign({ intent_type: "personal_sign", message: "hello from the SDK" });
    expect(await verifyMessage({ address: a.address, message: "hello from the SDK", signature: message.signature })).toBe(true);

    const td = transferWithAuthorization(s.token, a.address, PAYEE, UNIT, (await s.now()) + 600n, keccak256(toHex("sdk")));
    const typed = await sign({ intent_type: "typed_data", typed_data: td });
    expect(await verifyTypedData({ ...(td as any), address: a.address, signature: typed.signature })).toBe(true);

    const digest = keccak256(toHex("digest"));
    const blind = await sign({ intent_type: "eip712_digest", hash: digest });
    expect(await recoverAddress({ hash: digest, signature: blind.signature })).toBe(a.address);

    for (const tx_type of [0, 1, 2]) {
      const tx = await sign({
        intent_type: "transaction",
        tx_type,
        to: PAYEE,
        value: "0.0001",
        ...(tx_type > 0 ? { access_list: [{ address: PAYEE, storage_keys: [] }] } : {}),
      });
      expect(tx.tx_type).toBe(tx_type);
      expect((await s.dev.pub.waitForTransactionReceipt({ hash: tx.tx_hash })).status).toBe("success");
    }
    const setCode = await sign(delegation(a.address, s.delegate));
    expect(parseTransaction(setCode.signed_tx as Hex).type).toBe("eip7702");
    expect((await s.dev.pub.waitForTransactionReceipt({ hash: setCode.tx_hash })).status).toBe("success");
    expect((await s.dev.pub.getCode({ address: a.address }))?.toLowerCase()).toBe(`0xef0100${s.delegate.slice(2).toLowerCase()}`);

    const denied = await client.agents.sign(a.id, {
      chain: "local",
      intent_type: "typed_data",
      typed_data: transferWithAuthorization(s.token, a.address, s.delegate, UNIT, (await s.now()) + 600n, keccak256(toHex("x"))),
    });
    expect(denied.data).toBeNull();
    expect(denied.meta.status).toBe(403);
  });
});
