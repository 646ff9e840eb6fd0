// Decodes the calldata of the token operations whose effect a guardrail must see: who receives, who
// may spend, how much. Pure; unknown selectors decode to { kind: "unknown" }.
import { decodeFunctionData, parseAbi, type Hex } from "viem";

export const MAX_UINT256 = (1n << 256n) - 1n;

const ABI = parseAbi([
  "function transfer(address to, uint256 amount)",
  "function transferFrom(address from, address to, uint256 amount)",
  "function approve(address spender, uint256 amount)",
  "function increaseAllowance(address spender, uint256 addedValue)",
  "function safeTransferFrom(address from, address to, uint256 tokenId)",
  "function safeTransferFrom(address from, address to, uint256 tokenId, bytes data)",
  "function setApprovalForAll(address operator, bool approved)",
  "function safeTransferFrom(address from, address to, uint256 id, uint256 amount, bytes data)",
  "function safeBatchTransferFrom(address from, address to, uint256[] ids, uint256[] amounts, bytes data)",
]);

export type DecodedCall =
  | { kind: "none" }
  | { kind: "unknown"; selector: string }
  /** Moves `amount` of the token at the call's target to `recipient` (ERC-20, or ERC-721/1155 ids). */
  | { kind: "transfer"; standard: "erc20" | "erc721" | "erc1155"; recipient: string; from?: string; amount: bigint; fn: string }
  /** Lets `spender` move tokens; `amount` is MAX_UINT256 for an operator approval (setApprovalForAll). */
  | { kind: "approve"; spender: string; amount: bigint; increase: boolean; fn: string };

const lower = (a: unknown) => String(a).toLowerCase();

export function decodeCall(data: string | undefined): DecodedCall {
  if (!data || data === "0x") return { kind: "none" };
  const selector = data.slice(0, 10).toLowerCase();
  let decoded: { functionName: string; args: readonly unknown[] };
  try {
    decoded = decodeFunctionData({ abi: ABI, data: data as Hex }) as { functionName: string; args: readonly unknown[] };
  } catch {
    return { kind: "unknown", selector };
  }
  const a = decoded.args;
  switch (decoded.functionName) {
    case "transfer":
      return { kind: "transfer", standard: "erc20", recipient: lower(a[0]), amount: a[1] as bigint, fn: "transfer" };
    case "transferFrom":
      // ERC-20 and ERC-721 share this selector; the amount is a token id for an NFT.
      return { kind: "transfer", standard: "erc20", from: lower(a[0]), recipient: lower(a[1]), amount: a[2] as bigint, fn: "transferFrom" };
    case "approve":
      return { kind: "approve", spender: lower(a[0]), amount: a[1] as bigint, increase: false, fn: "approve" };
    case "increaseAllowance":
      return { kind: "approve", spender: lower(a[0]), amount: a[1] as bigint, increase: true, fn: "increaseAllowance" };
    case "setApprovalForAll":
      return a[1] === true
        ? { kind: "approve", spender: lower(a[0]), amount: MAX_UINT256, increase: false, fn: "setApprovalForAll" }
        : { kind: "approve", spender: lower(a[0]), amount: 0n, increase: false, fn: "setApprovalForAll" };
    case "safeTransferFrom":
      return a.length === 5
        ? { kind: "transfer", standard: "erc1155", from: lower(a[0]), recipient: lower(a[1]), amount: a[3] as bigint, fn: "safeTransferFrom" }
        : { kind: "transfer", standard: "erc721", from: lower(a[0]), recipient: lower(a[1]), amount: 1n, fn: "safeTransferFrom" };
    case "safeBatchTransferFrom":
      return {
        kind: "transfer",
        standard: "erc1155",
        from: lower(a[0]),
        recipient: lower(a[1]),
        amount: (a[3] as readonly bigint[]).reduce((x, y) => x + y, 0n),
        fn: "safeBatchTransferFrom",
      };
  }
  return { kind: "unknown", selector };
}
