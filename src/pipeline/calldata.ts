// Decodes the calldata of the token operations whose effect a guardrail must see: who receives, who
// may spend, how much, of which token. Pure. Takes the call's target (Permit2's functions are only
// Permit2's at its canonical address) and its data; returns
//   - `none` for no data, `unknown` for a selector this module does not know,
//   - `malformed` for a known selector whose arguments are not the canonical ABI encoding (an address
//     word with high bits set, a bool other than 0/1, an integer wider than its type, odd offsets,
//     trailing bytes): tokens compiled with other ABI decoders may read such bytes differently (ABI v1
//     reads setApprovalForAll(x, 2) as true), so the pipeline denies them instead of guessing;
//   - `token` with the list of effects (transfers and approvals) the call has.
// Strictness is checked by re-encoding: the arguments decoded from the data must encode back to the
// exact same bytes.
import { decodeFunctionData, encodeFunctionData, parseAbi, toFunctionSelector, type Abi, type AbiFunction, type Hex } from "viem";
import { MAX_UINT256 } from "../units.js";

/** Uniswap's Permit2, deployed at the same address on every chain. */
export const PERMIT2 = "0x000000000022d473030f116ddee9f6b43ac78ba3";

// Token standards: ERC-20 (+ the allowance helpers of OpenZeppelin and older tokens), ERC-721,
// ERC-1155, ERC-677/1363 (…AndCall), ERC-777 (send and operators), EIP-2612 and DAI-style permit.
const TOKEN_ABI = parseAbi([
  "function transfer(address to, uint256 amount)",
  "function transferFrom(address from, address to, uint256 amount)",
  "function approve(address spender, uint256 amount)",
  "function increaseAllowance(address spender, uint256 addedValue)",
  "function decreaseAllowance(address spender, uint256 subtractedValue)",
  "function increaseApproval(address spender, uint256 addedValue)",
  "function decreaseApproval(address spender, uint256 subtractedValue)",
  "function safeTransferFrom(address from, address to, uint256 tokenId)",
  "function safeTransferFrom(address from, address to, uint256 tokenId, bytes data)",
  "function setApprovalForAll(address operator, bool approved)",
  "function safeTransferFrom(address from, address to, uint256 id, uint256 amount, bytes data)",
  "function safeBatchTransferFrom(address from, address to, uint256[] ids, uint256[] amounts, bytes data)",
  "function transferAndCall(address to, uint256 amount)",
  "function transferAndCall(address to, uint256 amount, bytes data)",
  "function transferFromAndCall(address from, address to, uint256 amount)",
  "function transferFromAndCall(address from, address to, uint256 amount, bytes data)",
  "function approveAndCall(address spender, uint256 amount)",
  "function approveAndCall(address spender, uint256 amount, bytes data)",
  "function send(address to, uint256 amount, bytes data)",
  "function operatorSend(address from, address to, uint256 amount, bytes data, bytes operatorData)",
  "function authorizeOperator(address operator)",
  "function revokeOperator(address operator)",
  "function permit(address owner, address spender, uint256 value, uint256 deadline, uint8 v, bytes32 r, bytes32 s)",
  "function permit(address holder, address spender, uint256 nonce, uint256 expiry, bool allowed, uint8 v, bytes32 r, bytes32 s)",
]);

const PERMIT2_ABI = parseAbi([
  "struct PermitDetails { address token; uint160 amount; uint48 expiration; uint48 nonce; }",
  "struct PermitSingle { PermitDetails details; address spender; uint256 sigDeadline; }",
  "struct PermitBatch { PermitDetails[] details; address spender; uint256 sigDeadline; }",
  "struct AllowanceTransferDetails { address from; address to; uint160 amount; address token; }",
  "function approve(address token, address spender, uint160 amount, uint48 expiration)",
  "function permit(address owner, PermitSingle permitSingle, bytes signature)",
  "function permit(address owner, PermitBatch permitBatch, bytes signature)",
  "function transferFrom(address from, address to, uint160 amount, address token)",
  "function transferFrom(AllowanceTransferDetails[] transferDetails)",
]);

export type TokenEffect =
  /** Moves `amount` of `token` to `recipient` (from `from`, or the caller when absent). */
  | {
      type: "transfer";
      token: string;
      standard: "erc20" | "erc721" | "erc1155" | "erc777" | "permit2";
      from?: string;
      recipient: string;
      amount: bigint;
    }
  /**
   * Lets `spender` move `token`: `set` replaces the allowance, `increase` adds to it, `decrease` lowers
   * it, `operator` is an approval for everything the owner holds (amount MAX_UINT256).
   */
  | { type: "approve"; token: string; spender: string; amount: bigint; mode: "set" | "increase" | "decrease" | "operator"; owner?: string };

export type DecodedCall =
  | { kind: "none" }
  | { kind: "unknown"; selector: string }
  | { kind: "malformed"; selector: string; fn: string }
  | { kind: "token"; selector: string; fn: string; effects: TokenEffect[] };

type Fn = AbiFunction;
const bySelector = (abi: Abi): Map<string, Fn> => {
  const m = new Map<string, Fn>();
  for (const item of abi) if (item.type === "function") m.set(toFunctionSelector(item).toLowerCase(), item);
  return m;
};

const TOKEN_FUNCTIONS = bySelector(TOKEN_ABI);
const PERMIT2_FUNCTIONS = bySelector(PERMIT2_ABI);

const lower = (a: unknown) => String(a).toLowerCase();

/** Decodes `data` sent to `to`. Never throws. */
export function decodeCall(to: string, data: string | undefined): DecodedCall {
  if (!data || data === "0x") return { kind: "none" };
  const selector = data.slice(0, 10).toLowerCase();
  if (data.length < 10) return { kind: "unknown", selector };
  const permit2 = to.toLowerCase() === PERMIT2;
  const fn = (permit2 ? PERMIT2_FUNCTIONS : TOKEN_FUNCTIONS).get(selector);
  if (!fn) return { kind: "unknown", selector };
  const malformed: DecodedCall = { kind: "malformed", selector, fn: fn.name };
  // Every canonical encoding of these functions is whole 32-byte words after the selector.
  if (!/^0x[0-9a-fA-F]*$/.test(data) || (data.length - 10) % 64 !== 0) return malformed;
  let args: readonly unknown[];
  try {
    args = (decodeFunctionData({ abi: [fn], data: data as Hex }).args ?? []) as readonly unknown[];
    if (encodeFunctionData({ abi: [fn], functionName: fn.name, args } as never).toLowerCase() !== data.toLowerCase()) return malformed;
  } catch {
    return malformed;
  }
  const effects = permit2 ? permit2Effects(fn, args) : tokenEffects(to.toLowerCase(), fn, args);
  return { kind: "token", selector, fn: fn.name, effects };
}

function tokenEffects(token: string, fn: Fn, a: readonly unknown[]): TokenEffect[] {
  const transfer = (
    standard: "erc20" | "erc721" | "erc1155" | "erc777",
    recipient: unknown,
    amount: bigint,
    from?: unknown,
  ): TokenEffect => ({
    type: "transfer",
    token,
    standard,
    recipient: lower(recipient),
    amount,
    ...(from !== undefined ? { from: lower(from) } : {}),
  });
  const approve = (spender: unknown, amount: bigint, mode: "set" | "increase" | "decrease" | "operator", owner?: unknown): TokenEffect => ({
    type: "approve",
    token,
    spender: lower(spender),
    amount,
    mode,
    ...(owner !== undefined ? { owner: lower(owner) } : {}),
  });
  const n = fn.inputs.length;
  switch (fn.name) {
    case "transfer":
    case "transferAndCall":
      return [transfer("erc20", a[0], a[1] as bigint)];
    case "send":
      return [transfer("erc777", a[0], a[1] as bigint)];
    case "transferFrom":
    case "transferFromAndCall":
      // ERC-20 and ERC-721 share transferFrom; the amount is a token id for an NFT.
      return [transfer("erc20", a[1], a[2] as bigint, a[0])];
    case "operatorSend":
      return [transfer("erc777", a[1], a[2] as bigint, a[0])];
    case "safeTransferFrom":
      return n === 5 ? [transfer("erc1155", a[1], a[3] as bigint, a[0])] : [transfer("erc721", a[1], 1n, a[0])];
    case "safeBatchTransferFrom":
      return [
        transfer(
          "erc1155",
          a[1],
          (a[3] as readonly bigint[]).reduce((x, y) => x + y, 0n),
          a[0],
        ),
      ];
    case "approve":
    case "approveAndCall":
      return [approve(a[0], a[1] as bigint, "set")];
    case "increaseAllowance":
    case "increaseApproval":
      return [approve(a[0], a[1] as bigint, "increase")];
    case "decreaseAllowance":
    case "decreaseApproval":
      return [approve(a[0], a[1] as bigint, "decrease")];
    case "setApprovalForAll":
      return [a[1] === true ? approve(a[0], MAX_UINT256, "operator") : approve(a[0], 0n, "set")];
    case "authorizeOperator":
      return [approve(a[0], MAX_UINT256, "operator")];
    case "revokeOperator":
      return [approve(a[0], 0n, "set")];
    case "permit":
      // EIP-2612 permit(owner, spender, value, …) or DAI's permit(holder, spender, nonce, expiry, allowed, …).
      return n === 7 ? [approve(a[1], a[2] as bigint, "set", a[0])] : [approve(a[1], a[4] === true ? MAX_UINT256 : 0n, "set", a[0])];
  }
  return [];
}

interface PermitDetails {
  token: string;
  amount: bigint;
}

function permit2Effects(fn: Fn, a: readonly unknown[]): TokenEffect[] {
  const approve = (token: unknown, spender: unknown, amount: bigint, owner?: unknown): TokenEffect => ({
    type: "approve",
    token: lower(token),
    spender: lower(spender),
    amount,
    mode: "set",
    ...(owner !== undefined ? { owner: lower(owner) } : {}),
  });
  const transfer = (from: unknown, to: unknown, amount: bigint, token: unknown): TokenEffect => ({
    type: "transfer",
    token: lower(token),
    standard: "permit2",
    from: lower(from),
    recipient: lower(to),
    amount,
  });
  switch (fn.name) {
    case "approve":
      return [approve(a[0], a[1], a[2] as bigint)];
    case "permit": {
      const p = a[1] as { details: PermitDetails | readonly PermitDetails[]; spender: string };
      const details = Array.isArray(p.details) ? (p.details as readonly PermitDetails[]) : [p.details as PermitDetails];
      return details.map((d) => approve(d.token, p.spender, d.amount, a[0]));
    }
    case "transferFrom":
      if (fn.inputs.length === 4) return [transfer(a[0], a[1], a[2] as bigint, a[3])];
      return (a[0] as ReadonlyArray<{ from: string; to: string; amount: bigint; token: string }>).map((t) =>
        transfer(t.from, t.to, t.amount, t.token),
      );
  }
  return [];
}
