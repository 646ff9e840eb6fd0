// intent_type "transaction" goes through the submit pipeline: types 0, 1 (access list), 2 and 4
// (EIP-7702 authorizations signed by the same key in the HSM). On anvil (Prague): an authorization to
// an allowlisted delegate leaves the key's account delegated (code 0xef0100‖delegate); a delegate not
// allowlisted, an authorization for chain id 0 or another chain, a caller-chosen authorization nonce
// and type 3 are refused with nothing signed.
import { concat, parseTransaction, recoverTransactionAddress, type Address, type Hex } from "viem";
import { describe, expect, it } from "vitest";
import { Delegate7702 } from "../contracts/intents.js";
import { call } from "../helpers/api.js";
import { assertMatchesReference } from "../helpers/reference.js";
import { delegation, ping, useIntentStack } from "./helpers.js";

const PAYEE = "0x00000000000000000000000000000000000a11ce" as Address;

describe("transaction signing intents", () => {
  const s = useIntentStack();

  const txCount = async (agentId: string) =>
    (await s.svc.ctx.pool.query("SELECT count(*)::int AS n FROM transactions WHERE agent_id = $1", [agentId])).rows[0].n;

  it("types 0, 1 (with an access list) and 2 are signed, broadcast and mined, with the type asked for", async () => {
    const a = await s.agent({}, 0n);
    const accessList = [{ address: s.token, storage_keys: [`0x${"00".repeat(31)}01`] }];
    for (const [txType, extra] of [
      [0, {}],
      [1, { access_list: accessList }],
      [2, { access_list: accessList }],
    ] as const) {
      const r = await s.sign(a, { intent_type: "transaction", tx_type: txType, to: PAYEE, value: "0.001", ...extra });
      expect(r.status, JSON.stringify(r.body)).toBe(200);
      assertMatchesReference("SignIntentResponse", r.body);
      expect(r.body).toMatchObject({ intent_type: "transaction", tx_type: txType, from: a.address, status: "broadcast" });
      const parsed = parseTransaction(r.body.signed_tx as Hex);
      expect(parsed.type).toBe(["legacy", "eip2930", "eip1559"][txType]);
      if (txType > 0) expect(parsed.accessList?.[0]?.address.toLowerCase()).toBe(s.token.toLowerCase());
      expect(await recoverTransactionAddress({ serializedTransaction: r.body.signed_tx })).toBe(a.address);
      const receipt = await s.dev.pub.waitForTransactionReceipt({ hash: r.body.tx_hash });
      expect(receipt.status).toBe("success");
    }
    // sign_only: signed and recorded, not broadcast.
    const only = await s.sign(a, { intent_type: "transaction", to: PAYEE, value: "0", sign_only: true });
    expect(only.body.status).toBe("sign_only");
    expect(await s.dev.pub.getTransaction({ hash: only.body.tx_hash }).catch(() => null)).toBeNull();
  });

  it("an Idempotency-Key replays the transaction intent byte for byte, with one signature and one row", async () => {
    const a = await s.agent({}, 0n);
    const body = { intent_type: "transaction", to: PAYEE, value: "0.0002" };
    const first = await s.sign(a, body, { "idempotency-key": "tx-1" });
    expect(first.status).toBe(200);
    const again = await s.sign(a, body, { "idempotency-key": "tx-1" });
    expect(again.raw).toBe(first.raw);
    expect(await txCount(a.id)).toBe(1);
    // The same key on the transactions route names a different request.
    const other = await call(s.svc.app, "POST", `/v1/agents/${a.id}/transactions`, {
      token: a.token,
      body: { to: PAYEE, value: "0.0002", chain: "local" },
      headers: { "idempotency-key": "tx-1" },
    });
    expect(other.status).toBe(422);
  });

  it("the transaction guardrails apply: a recipient not allowlisted and a value over the limit are 403", async () => {
    const a = await s.agent({ tx_to_allowlist: [PAYEE], tx_max_value: "0.01" }, 0n);
    const r = await s.sign(a, { intent_type: "transaction", to: s.token, value: "0" });
    expect(r.status).toBe(403);
    expect(r.body.guardrail.reason_code).toBe("to_not_allowlisted");
    expect((await s.sign(a, { intent_type: "transaction", to: PAYEE, value: "0.02" })).body.guardrail.reason_code).toBe(
      "max_value_exceeded",
    );
    expect(await txCount(a.id)).toBe(0);
  });

  it("EIP-7702: an authorization to an allowlisted delegate, sent in a type-4 transaction, delegates the key's account", async () => {
    const a = await s.agent({ eip7702_delegate_allowlist: [s.delegate] }, 0n);
    const r = await s.sign(a, delegation(a.address, s.delegate));
    expect(r.status, JSON.stringify(r.body)).toBe(200);
    expect(r.body.tx_type).toBe(4);
    const parsed = parseTransaction(r.body.signed_tx as Hex);
    expect(parsed.type).toBe("eip7702");
    expect(parsed.authorizationList).toHaveLength(1);
    expect(parsed.authorizationList![0]).toMatchObject({ address: s.delegate.toLowerCase(), chainId: 31337, nonce: r.body.nonce + 1 });
    const receipt = await s.dev.pub.waitForTransactionReceipt({ hash: r.body.tx_hash });
    expect(receipt.status).toBe("success");
    expect((await s.dev.pub.getCode({ address: a.address }))?.toLowerCase()).toBe(concat(["0xef0100", s.delegate]).toLowerCase());
    // The delegated code ran in the key's own account.
    expect(await s.dev.pub.readContract({ address: a.address, abi: Delegate7702.abi, functionName: "pings" })).toBe(1n);
    const audit = await s.svc.ctx.pool.query("SELECT details FROM audit_events WHERE action = 'transaction.submit' AND resource_id = $1", [
      r.body.id,
    ]);
    expect(audit.rows[0].details).toMatchObject({ tx_type: 4, authorizations: [{ delegate: s.delegate.toLowerCase(), chain_id: 31337 }] });
  });

  it("EIP-7702: a delegate not allowlisted, chain id 0, another chain and a chosen authorization nonce are refused; nothing is signed", async () => {
    const a = await s.agent({ eip7702_delegate_allowlist: [s.delegate] }, 0n);
    const base = { intent_type: "transaction", tx_type: 4, to: a.address, value: "0", data: ping() };
    const other = await s.sign(a, { ...base, authorization_list: [{ address: PAYEE }] });
    expect(other.status).toBe(403);
    assertMatchesReference("ProblemDetails", other.body);
    expect(other.body.guardrail).toMatchObject({ reason_code: "eip7702_delegate_not_allowlisted", attempted: PAYEE.toLowerCase() });
    const zero = await s.sign(a, { ...base, authorization_list: [{ address: s.delegate, chain_id: 0 }] });
    expect(zero.body.guardrail.reason_code).toBe("eip7702_chain_id_zero");
    const elsewhere = await s.sign(a, { ...base, authorization_list: [{ address: s.delegate, chain_id: 1 }] });
    expect(elsewhere.body.guardrail.reason_code).toBe("eip7702_chain_mismatch");
    const nonce = await s.sign(a, { ...base, authorization_list: [{ address: s.delegate, nonce: 5 }] });
    expect(nonce.status).toBe(400);
    // Default: no delegate is allowed at all.
    const none = await s.agent({}, 0n);
    expect(
      (await s.sign(none, { ...base, to: none.address, authorization_list: [{ address: s.delegate }] })).body.guardrail.reason_code,
    ).toBe("eip7702_delegate_not_allowlisted");
    // Chain id 0 only when the operator allows it explicitly.
    await call(s.svc.app, "PATCH", `/v1/agents/${a.id}`, { token: s.op, body: { eip7702_allow_chain_id_zero: true } });
    const allowed = await s.sign(a, { ...base, authorization_list: [{ address: s.delegate, chain_id: 0 }] });
    expect(allowed.status, JSON.stringify(allowed.body)).toBe(200);
    expect(
      (parseTransaction(allowed.body.signed_tx as Hex) as { authorizationList: ReadonlyArray<{ chainId: number }> }).authorizationList[0]
        .chainId,
    ).toBe(0);
    expect(await s.dev.pub.getCode({ address: none.address })).toBeUndefined();
    expect(await txCount(none.id)).toBe(0);
  });

  it("type 3 (blobs) and malformed transaction intents are a clear 400", async () => {
    const a = await s.agent({}, 0n);
    const blob = await s.sign(a, { intent_type: "transaction", tx_type: 3, to: PAYEE, value: "0" });
    expect(blob.status).toBe(400);
    expect(blob.body.detail).toMatch(/type 3/);
    assertMatchesReference("ProblemDetails", blob.body);
    const blobFields = await s.sign(a, {
      intent_type: "transaction",
      to: PAYEE,
      value: "0",
      blob_versioned_hashes: [`0x01${"00".repeat(31)}`],
    });
    expect(blobFields.status).toBe(400);
    for (const body of [
      { intent_type: "transaction", tx_type: 0, to: PAYEE, value: "0", max_fee_per_gas: "1", max_priority_fee_per_gas: "1" },
      { intent_type: "transaction", tx_type: 2, to: PAYEE, value: "0", gas_price: "1" },
      { intent_type: "transaction", tx_type: 0, to: PAYEE, value: "0", access_list: [] },
      { intent_type: "transaction", tx_type: 4, to: PAYEE, value: "0" },
      { intent_type: "transaction", tx_type: 7, to: PAYEE, value: "0" },
      { intent_type: "transaction", to: PAYEE, value: "0", message: "0x00" },
    ]) {
      const r = await s.sign(a, body);
      expect(r.status, JSON.stringify(body)).toBe(400);
    }
    expect(await txCount(a.id)).toBe(0);
  });
});
