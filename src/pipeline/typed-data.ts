// EIP-712 typed data, decoded strictly, and what the known kinds mean. Pure: no I/O.
//
// normalizeTypedData checks every value against its declared type (integers in range, from a safe JSON
// number or a decimal/hex string; addresses; booleans only as true/false; exact byte lengths; no
// missing or extra struct members; bounded depth and size) and returns the values as viem hashes them,
// so the meaning decoded here is exactly what the signature covers.
//
// decodeTypedData recognises a kind by its primaryType AND the exact definitions of every type it uses
// (a "Permit" with other members is not a Permit): EIP-2612 Permit, DAI's permit, Permit2's PermitSingle,
// PermitBatch, PermitTransferFrom, PermitBatchTransferFrom and PermitWitnessTransferFrom (at Permit2's
// canonical address, domain name "Permit2"), and EIP-3009 TransferWithAuthorization /
// ReceiveWithAuthorization. Anything else is `typed_data_unknown`.
import { getAddress, getTypesForEIP712Domain, hashTypedData, isAddress, validateTypedData, type TypedDataDefinition } from "viem";
import { MAX_UINT256 } from "../units.js";

export const PERMIT2_ADDRESS = "0x000000000022d473030f116ddee9f6b43ac78ba3";

export interface TypedDataJson {
  types: Record<string, Array<{ name: string; type: string }>>;
  primaryType: string;
  domain: Record<string, unknown>;
  message: Record<string, unknown>;
}

export class TypedDataError extends Error {}

const MAX_DEPTH = 8;
const MAX_ARRAY = 256;
const DOMAIN_FIELDS: Record<string, string> = {
  name: "string",
  version: "string",
  chainId: "uint256",
  verifyingContract: "address",
  salt: "bytes32",
};

function parseInteger(v: unknown, where: string): bigint {
  if (typeof v === "number") {
    if (!Number.isSafeInteger(v)) throw new TypedDataError(`${where}: integers beyond 2^53 must be sent as strings`);
    return BigInt(v);
  }
  if (typeof v === "string" && /^(-?(0|[1-9]\d{0,77})|0x[0-9a-fA-F]{1,64})$/.test(v)) return BigInt(v);
  throw new TypedDataError(`${where}: must be an integer (a JSON number or a decimal or 0x string)`);
}

function normalizeValue(types: TypedDataJson["types"], type: string, v: unknown, where: string, depth: number): unknown {
  if (depth > MAX_DEPTH) throw new TypedDataError(`${where}: nested too deeply`);
  const array = /^(.*)\[(\d*)\]$/.exec(type);
  if (array) {
    if (!Array.isArray(v)) throw new TypedDataError(`${where}: must be an array`);
    if (v.length > MAX_ARRAY) throw new TypedDataError(`${where}: more than ${MAX_ARRAY} items`);
    if (array[2] !== "" && v.length !== Number(array[2])) throw new TypedDataError(`${where}: must have ${array[2]} items`);
    return v.map((x, i) => normalizeValue(types, array[1], x, `${where}[${i}]`, depth + 1));
  }
  if (types[type]) return normalizeStruct(types, type, v, where, depth + 1);
  const int = /^(u?)int(\d*)$/.exec(type);
  if (int) {
    const bits = int[2] === "" ? 256 : Number(int[2]);
    if (bits < 8 || bits > 256 || bits % 8 !== 0) throw new TypedDataError(`${where}: invalid type ${type}`);
    const n = parseInteger(v, where);
    const [min, max] = int[1] === "u" ? [0n, (1n << BigInt(bits)) - 1n] : [-(1n << BigInt(bits - 1)), (1n << BigInt(bits - 1)) - 1n];
    if (n < min || n > max) throw new TypedDataError(`${where}: out of range for ${type}`);
    return n;
  }
  if (type === "address") {
    if (typeof v !== "string" || !/^0x[0-9a-fA-F]{40}$/.test(v) || !isAddress(v, { strict: false }))
      throw new TypedDataError(`${where}: must be an address`);
    if (v !== v.toLowerCase() && v.slice(2) !== v.slice(2).toUpperCase() && getAddress(v) !== v)
      throw new TypedDataError(`${where}: has an invalid EIP-55 checksum`);
    return v.toLowerCase();
  }
  if (type === "bool") {
    if (typeof v !== "boolean") throw new TypedDataError(`${where}: must be true or false`);
    return v;
  }
  if (type === "string") {
    if (typeof v !== "string") throw new TypedDataError(`${where}: must be a string`);
    return v;
  }
  const bytes = /^bytes(\d*)$/.exec(type);
  if (bytes) {
    if (typeof v !== "string" || !/^0x([0-9a-fA-F]{2})*$/.test(v)) throw new TypedDataError(`${where}: must be 0x-prefixed hex bytes`);
    if (bytes[1] !== "") {
      const n = Number(bytes[1]);
      if (n < 1 || n > 32) throw new TypedDataError(`${where}: invalid type ${type}`);
      if ((v.length - 2) / 2 !== n) throw new TypedDataError(`${where}: must be exactly ${n} bytes`);
    }
    return v.toLowerCase();
  }
  throw new TypedDataError(`${where}: unknown type ${type}`);
}

function normalizeStruct(types: TypedDataJson["types"], type: string, v: unknown, where: string, depth: number): Record<string, unknown> {
  if (typeof v !== "object" || v === null || Array.isArray(v)) throw new TypedDataError(`${where}: must be an object of type ${type}`);
  const fields = types[type];
  const obj = v as Record<string, unknown>;
  const extra = Object.keys(obj).filter((k) => !fields.some((f) => f.name === k));
  if (extra.length) throw new TypedDataError(`${where}: members not in type ${type}: ${extra.slice(0, 5).join(", ")}`);
  const out: Record<string, unknown> = {};
  for (const f of fields) {
    if (!(f.name in obj)) throw new TypedDataError(`${where}.${f.name}: missing`);
    out[f.name] = normalizeValue(types, f.type, obj[f.name], `${where}.${f.name}`, depth);
  }
  return out;
}

export interface NormalizedTypedData {
  types: Record<string, Array<{ name: string; type: string }>>; // without EIP712Domain
  primaryType: string;
  domain: { name?: string; version?: string; chainId?: bigint; verifyingContract?: `0x${string}`; salt?: `0x${string}` };
  message: Record<string, unknown>;
  hash: `0x${string}`;
}

/** Strictly checked typed data and its EIP-712 hash; throws TypedDataError naming the first problem. */
export function normalizeTypedData(input: TypedDataJson): NormalizedTypedData {
  const { EIP712Domain: declaredDomain, ...types } = input.types;
  if (!types[input.primaryType]) throw new TypedDataError(`primaryType ${input.primaryType} is not defined in types`);
  for (const [name, fields] of Object.entries(types)) {
    if (!/^[A-Za-z_$][A-Za-z0-9_$]*$/.test(name)) throw new TypedDataError(`types: invalid type name ${name}`);
    const seen = new Set<string>();
    for (const f of fields) {
      if (seen.has(f.name)) throw new TypedDataError(`types.${name}: member ${f.name} appears twice`);
      seen.add(f.name);
    }
  }
  const domainIn = input.domain;
  const unknownDomain = Object.keys(domainIn).filter((k) => !(k in DOMAIN_FIELDS));
  if (unknownDomain.length) throw new TypedDataError(`domain: unknown member(s) ${unknownDomain.join(", ")}`);
  const domain: Record<string, unknown> = {};
  for (const [k, t] of Object.entries(DOMAIN_FIELDS))
    if (domainIn[k] !== undefined) domain[k] = normalizeValue({}, t, domainIn[k], `domain.${k}`, 0);
  // The domain's type is implied by its members (as viem builds it); a declared one must say the same.
  const implied = getTypesForEIP712Domain({ domain: domain as never });
  if (
    declaredDomain &&
    JSON.stringify(declaredDomain.map((f) => [f.name, f.type])) !==
      JSON.stringify(implied.map((f: { name: string; type: string }) => [f.name, f.type]))
  ) {
    throw new TypedDataError(
      "types.EIP712Domain does not match the domain's members (order: name, version, chainId, verifyingContract, salt)",
    );
  }
  const message = normalizeStruct(types, input.primaryType, input.message, "message", 0);
  const def = { domain, types, primaryType: input.primaryType, message } as unknown as TypedDataDefinition;
  try {
    validateTypedData(def);
    return { types, primaryType: input.primaryType, domain: domain as NormalizedTypedData["domain"], message, hash: hashTypedData(def) };
  } catch (err) {
    throw new TypedDataError(
      `typed data is not valid EIP-712: ${(err as { shortMessage?: string }).shortMessage ?? (err as Error).message}`,
    );
  }
}

// ---- Known kinds ----------------------------------------------------------------------------------

type Fields = Array<[string, string]>;
const PERMIT_DETAILS: Fields = [
  ["token", "address"],
  ["amount", "uint160"],
  ["expiration", "uint48"],
  ["nonce", "uint48"],
];
const TOKEN_PERMISSIONS: Fields = [
  ["token", "address"],
  ["amount", "uint256"],
];
const AUTHORIZATION: Fields = [
  ["from", "address"],
  ["to", "address"],
  ["value", "uint256"],
  ["validAfter", "uint256"],
  ["validBefore", "uint256"],
  ["nonce", "bytes32"],
];

const KNOWN: Array<{ kind: string; primaryType: string; types: Record<string, Fields>; permit2?: boolean; witness?: boolean }> = [
  {
    kind: "permit",
    primaryType: "Permit",
    types: {
      Permit: [
        ["owner", "address"],
        ["spender", "address"],
        ["value", "uint256"],
        ["nonce", "uint256"],
        ["deadline", "uint256"],
      ],
    },
  },
  {
    kind: "dai_permit",
    primaryType: "Permit",
    types: {
      Permit: [
        ["holder", "address"],
        ["spender", "address"],
        ["nonce", "uint256"],
        ["expiry", "uint256"],
        ["allowed", "bool"],
      ],
    },
  },
  {
    kind: "permit2_single",
    primaryType: "PermitSingle",
    permit2: true,
    types: {
      PermitSingle: [
        ["details", "PermitDetails"],
        ["spender", "address"],
        ["sigDeadline", "uint256"],
      ],
      PermitDetails: PERMIT_DETAILS,
    },
  },
  {
    kind: "permit2_batch",
    primaryType: "PermitBatch",
    permit2: true,
    types: {
      PermitBatch: [
        ["details", "PermitDetails[]"],
        ["spender", "address"],
        ["sigDeadline", "uint256"],
      ],
      PermitDetails: PERMIT_DETAILS,
    },
  },
  {
    kind: "permit2_transfer",
    primaryType: "PermitTransferFrom",
    permit2: true,
    types: {
      PermitTransferFrom: [
        ["permitted", "TokenPermissions"],
        ["spender", "address"],
        ["nonce", "uint256"],
        ["deadline", "uint256"],
      ],
      TokenPermissions: TOKEN_PERMISSIONS,
    },
  },
  {
    kind: "permit2_batch_transfer",
    primaryType: "PermitBatchTransferFrom",
    permit2: true,
    types: {
      PermitBatchTransferFrom: [
        ["permitted", "TokenPermissions[]"],
        ["spender", "address"],
        ["nonce", "uint256"],
        ["deadline", "uint256"],
      ],
      TokenPermissions: TOKEN_PERMISSIONS,
    },
  },
  {
    kind: "permit2_witness_transfer",
    primaryType: "PermitWitnessTransferFrom",
    permit2: true,
    witness: true,
    types: {
      PermitWitnessTransferFrom: [
        ["permitted", "TokenPermissions"],
        ["spender", "address"],
        ["nonce", "uint256"],
        ["deadline", "uint256"],
      ],
      TokenPermissions: TOKEN_PERMISSIONS,
    },
  },
  { kind: "transfer_with_authorization", primaryType: "TransferWithAuthorization", types: { TransferWithAuthorization: AUTHORIZATION } },
  { kind: "receive_with_authorization", primaryType: "ReceiveWithAuthorization", types: { ReceiveWithAuthorization: AUTHORIZATION } },
];

const sameFields = (a: Array<{ name: string; type: string }> | undefined, b: Fields) =>
  !!a && a.length === b.length && a.every((f, i) => f.name === b[i][0] && f.type === b[i][1]);

function matches(td: NormalizedTypedData, k: (typeof KNOWN)[number]): boolean {
  if (td.primaryType !== k.primaryType) return false;
  for (const [name, fields] of Object.entries(k.types)) {
    if (name === k.primaryType && k.witness) {
      // Permit2's witness transfer: the four fixed members, then `witness` of a struct type the caller defines.
      const t = td.types[name];
      if (
        !t ||
        t.length !== 5 ||
        !sameFields(t.slice(0, 4), fields) ||
        t[4].name !== "witness" ||
        !td.types[t[4].type.replace(/\[\d*\]$/, "")]
      )
        return false;
      continue;
    }
    if (!sameFields(td.types[name], fields)) return false;
  }
  if (k.permit2) return td.domain.verifyingContract === PERMIT2_ADDRESS && td.domain.name === "Permit2" && td.domain.version === undefined;
  return td.domain.verifyingContract !== undefined;
}

/** What a signature lets someone do with the signer's tokens. Amounts in base units. */
export interface TypedMeaning {
  kind: string;
  /** The account the signature speaks for, where the type names one (must be the signing key). */
  owner?: string;
  approvals: Array<{ token: string; spender: string; amount: bigint }>;
  transfers: Array<{ token: string; recipient: string; amount: bigint }>;
  /** Unix seconds at which each validity limit ends; 0 means never. */
  expiries: Array<{ field: string; at: bigint }>;
  /** For the audit: the decoded message with amounts as decimal strings. */
  details: Record<string, unknown>;
}

const U160_MAX = (1n << 160n) - 1n;
const asJson = (v: unknown): unknown =>
  typeof v === "bigint"
    ? v.toString()
    : Array.isArray(v)
      ? v.map(asJson)
      : v && typeof v === "object"
        ? Object.fromEntries(Object.entries(v).map(([k, x]) => [k, asJson(x)]))
        : v;

export function decodeTypedData(td: NormalizedTypedData): TypedMeaning {
  const k = KNOWN.find((c) => matches(td, c));
  const m = td.message as Record<string, any>;
  const base = { details: asJson(m) as Record<string, unknown> };
  if (!k) return { kind: "typed_data_unknown", approvals: [], transfers: [], expiries: [], ...base };
  const token = td.domain.verifyingContract!;
  // Permit2 allowances are uint160: its maximum means "unlimited", as 2^256-1 does for an ERC-20.
  const p2amount = (a: bigint) => (a === U160_MAX ? MAX_UINT256 : a);
  switch (k.kind) {
    case "permit":
      return {
        kind: k.kind,
        owner: m.owner,
        approvals: [{ token, spender: m.spender, amount: m.value }],
        transfers: [],
        expiries: [{ field: "deadline", at: m.deadline }],
        ...base,
      };
    case "dai_permit":
      return {
        kind: k.kind,
        owner: m.holder,
        approvals: [{ token, spender: m.spender, amount: m.allowed ? MAX_UINT256 : 0n }],
        transfers: [],
        expiries: [{ field: "expiry", at: m.expiry }],
        ...base,
      };
    case "permit2_single":
      return {
        kind: k.kind,
        approvals: [{ token: m.details.token, spender: m.spender, amount: p2amount(m.details.amount) }],
        transfers: [],
        expiries: [
          { field: "sigDeadline", at: m.sigDeadline },
          ...(m.details.expiration === 0n ? [] : [{ field: "details.expiration", at: m.details.expiration }]),
        ],
        ...base,
      };
    case "permit2_batch":
      return {
        kind: k.kind,
        approvals: m.details.map((d: any) => ({ token: d.token, spender: m.spender, amount: p2amount(d.amount) })),
        transfers: [],
        expiries: [
          { field: "sigDeadline", at: m.sigDeadline },
          ...m.details
            .filter((d: any) => d.expiration !== 0n)
            .map((d: any, i: number) => ({ field: `details[${i}].expiration`, at: d.expiration })),
        ],
        ...base,
      };
    case "permit2_transfer":
    case "permit2_witness_transfer":
      // The spender chooses the recipient when it calls Permit2: the spender is who receives.
      return {
        kind: k.kind,
        approvals: [],
        transfers: [{ token: m.permitted.token, recipient: m.spender, amount: m.permitted.amount }],
        expiries: [{ field: "deadline", at: m.deadline }],
        ...base,
      };
    case "permit2_batch_transfer":
      return {
        kind: k.kind,
        approvals: [],
        transfers: m.permitted.map((p: any) => ({ token: p.token, recipient: m.spender, amount: p.amount })),
        expiries: [{ field: "deadline", at: m.deadline }],
        ...base,
      };
    default:
      // EIP-3009: `to` receives `value` of the token, valid until validBefore.
      return {
        kind: k.kind,
        owner: m.from,
        approvals: [],
        transfers: [{ token, recipient: m.to, amount: m.value }],
        expiries: [{ field: "validBefore", at: m.validBefore }],
        ...base,
      };
  }
}
