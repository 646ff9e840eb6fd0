// The typed-data decoder without I/O: known kinds are recognised only with their exact type
// definitions (any renamed, retyped, added, dropped or reordered member makes them unknown), values
// are held to their declared types, and the hash is viem's.
import fc from "fast-check";
import { hashTypedData } from "viem";
import { describe, expect, it } from "vitest";
import { PERMIT, PERMIT_DETAILS, TOKEN_PERMISSIONS } from "../helpers/typed-data.js";
import { decodeTypedData, normalizeTypedData, PERMIT2_ADDRESS, TypedDataError, type TypedDataJson } from "../../src/pipeline/typed-data.js";

const TOKEN = "0x1111111111111111111111111111111111111111";
const OWNER = "0x2222222222222222222222222222222222222222";
const SPENDER = "0x3333333333333333333333333333333333333333";

const KNOWN: Array<[string, TypedDataJson]> = [
  [
    "permit",
    {
      types: {
        Permit: PERMIT,
      },
      primaryType: "Permit",
      domain: { name: "T", version: "1", chainId: 1, verifyingContract: TOKEN },
      message: { owner: OWNER, spender: SPENDER, value: "5", nonce: "0", deadline: "100" },
    },
  ],
  [
    "dai_permit",
    {
      types: {
        Permit: [
          { name: "holder", type: "address" },
          { name: "spender", type: "address" },
          { name: "nonce", type: "uint256" },
          { name: "expiry", type: "uint256" },
          { name: "allowed", type: "bool" },
        ],
      },
      primaryType: "Permit",
      domain: { name: "Dai", version: "1", chainId: 1, verifyingContract: TOKEN },
      message: { holder: OWNER, spender: SPENDER, nonce: "0", expiry: "100", allowed: true },
    },
  ],
  [
    "permit2_batch",
    {
      types: {
        PermitBatch: [
          { name: "details", type: "PermitDetails[]" },
          { name: "spender", type: "address" },
          { name: "sigDeadline", type: "uint256" },
        ],
        PermitDetails: PERMIT_DETAILS,
      },
      primaryType: "PermitBatch",
      domain: { name: "Permit2", chainId: 1, verifyingContract: PERMIT2_ADDRESS },
      message: {
        details: [
          { token: TOKEN, amount: "7", expiration: "50", nonce: "0" },
          { token: SPENDER, amount: ((1n << 160n) - 1n).toString(), expiration: "0", nonce: "0" },
        ],
        spender: SPENDER,
        sigDeadline: "100",
      },
    },
  ],
  [
    "permit2_witness_transfer",
    {
      types: {
        PermitWitnessTransferFrom: [
          { name: "permitted", type: "TokenPermissions" },
          { name: "spender", type: "address" },
          { name: "nonce", type: "uint256" },
          { name: "deadline", type: "uint256" },
          { name: "witness", type: "Order" },
        ],
        TokenPermissions: TOKEN_PERMISSIONS,
        Order: [{ name: "id", type: "uint256" }],
      },
      primaryType: "PermitWitnessTransferFrom",
      domain: { name: "Permit2", chainId: 1, verifyingContract: PERMIT2_ADDRESS },
      message: { permitted: { token: TOKEN, amount: "9" }, spender: SPENDER, nonce: "1", deadline: "100", witness: { id: "1" } },
    },
  ],
];

describe("typed-data decoding", () => {
  it("decodes the known kinds with their amounts, spenders and validity", () => {
    const [permit, dai, batch, witness] = KNOWN.map(([, td]) => decodeTypedData(normalizeTypedData(td)));
    expect(permit).toMatchObject({
      kind: "permit",
      owner: OWNER,
      approvals: [{ token: TOKEN, spender: SPENDER, amount: 5n }],
      expiries: [{ at: 100n }],
    });
    expect(dai).toMatchObject({
      kind: "dai_permit",
      owner: OWNER,
      approvals: [{ amount: (1n << 256n) - 1n }],
      expiries: [{ field: "expiry", at: 100n }],
    });
    // Permit2's uint160 maximum is unlimited; an expiration of 0 (now) adds no limit.
    expect(batch).toMatchObject({
      kind: "permit2_batch",
      approvals: [
        { token: TOKEN, amount: 7n },
        { token: SPENDER, amount: (1n << 256n) - 1n },
      ],
    });
    expect(batch.expiries).toEqual([
      { field: "sigDeadline", at: 100n },
      { field: "details[0].expiration", at: 50n },
    ]);
    expect(witness).toMatchObject({ kind: "permit2_witness_transfer", transfers: [{ token: TOKEN, recipient: SPENDER, amount: 9n }] });
  });

  it("property: any change to a known kind's type definitions makes it unknown, and the hash stays viem's", () => {
    const mutation = fc.record({
      which: fc.nat({ max: KNOWN.length - 1 }),
      op: fc.constantFrom("rename", "retype", "add", "drop", "swap"),
      at: fc.nat(),
    });
    fc.assert(
      fc.property(mutation, ({ which, op, at }) => {
        const td = structuredClone(KNOWN[which][1]);
        const fields = td.types[td.primaryType];
        const i = at % fields.length;
        const message = td.message as Record<string, unknown>;
        if (op === "rename") {
          message[`${fields[i].name}X`] = message[fields[i].name];
          delete message[fields[i].name];
          fields[i] = { ...fields[i], name: `${fields[i].name}X` };
        } else if (op === "retype") {
          if (fields[i].type !== "uint256") return;
          fields[i] = { ...fields[i], type: "uint128" };
        } else if (op === "add") {
          fields.push({ name: "extra", type: "uint256" });
          message.extra = "1";
        } else if (op === "drop") {
          delete message[fields[i].name];
          fields.splice(i, 1);
        } else {
          const j = (i + 1) % fields.length;
          if (fields[i].type === fields[j].type && fields.length < 2) return;
          [fields[i], fields[j]] = [fields[j], fields[i]];
        }
        const n = normalizeTypedData(td);
        expect(decodeTypedData(n).kind).toBe("typed_data_unknown");
        expect(n.hash).toBe(hashTypedData({ ...(n as any) }));
      }),
      { numRuns: 200 },
    );
  });

  it("values must fit their declared types", () => {
    const base = KNOWN[0][1];
    const bad =
      (message: Record<string, unknown>, domain = base.domain) =>
      () =>
        normalizeTypedData({ ...base, domain, message: { ...base.message, ...message } });
    expect(bad({ value: 1e20 })).toThrow(TypedDataError); // unsafe JSON number
    expect(bad({ value: (1n << 256n).toString() })).toThrow(/out of range/);
    expect(bad({ value: "1.5" })).toThrow(TypedDataError);
    expect(bad({ owner: "0x1234" })).toThrow(/address/);
    expect(bad({ owner: "0x2222222222222222222222222222222222222222".replace("22", "Aa") })).toThrow(/checksum/);
    expect(bad({ extra: 1 })).toThrow(/members not in type/);
    expect(bad({}, { ...base.domain, foo: "x" } as never)).toThrow(/domain/);
    expect(() => normalizeTypedData({ ...base, types: { ...base.types, EIP712Domain: [{ name: "chainId", type: "uint256" }] } })).toThrow(
      /EIP712Domain/,
    );
    const dai = KNOWN[1][1];
    expect(() => normalizeTypedData({ ...dai, message: { ...dai.message, allowed: 1 } })).toThrow(/true or false/);
    // A self-referencing type cannot nest without end.
    let deep: Record<string, unknown> = { v: "1" };
    for (let i = 0; i < 20; i++) deep = { v: "1", next: [deep] };
    expect(() =>
      normalizeTypedData({
        types: {
          N: [
            { name: "v", type: "uint256" },
            { name: "next", type: "N[]" },
          ],
        },
        primaryType: "N",
        domain: { chainId: 1 },
        message: deep,
      }),
    ).toThrow(/deeply/);
  });
});
