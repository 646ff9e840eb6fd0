// Calls of every token family and of Permit2 that the calldata guardrails understand, written out from
// the standards (ERC-20, -677, -777, -1155, -1363, -2612, Permit2) rather than taken from the decoder's
// own table, so that a test does not agree with a mistake in it; and one encoder for them.
import { encodeFunctionData, parseAbi, type Hex } from "viem";

/** ERC-20 and the families built on it: transfers, approvals, callbacks, operators, EIP-2612 permit. */
export const TOKEN_CALLS = parseAbi([
  "function transfer(address to, uint256 amount)",
  "function transferFrom(address from, address to, uint256 amount)",
  "function approve(address spender, uint256 amount)",
  "function increaseAllowance(address spender, uint256 addedValue)",
  "function decreaseAllowance(address spender, uint256 subtractedValue)",
  "function increaseApproval(address spender, uint256 addedValue)",
  "function setApprovalForAll(address operator, bool approved)",
  "function safeTransferFrom(address from, address to, uint256 id, uint256 amount, bytes data)",
  "function transferAndCall(address to, uint256 amount)",
  "function transferAndCall(address to, uint256 amount, bytes data)",
  "function transferFromAndCall(address from, address to, uint256 amount, bytes data)",
  "function approveAndCall(address spender, uint256 amount, bytes data)",
  "function send(address to, uint256 amount, bytes data)",
  "function operatorSend(address from, address to, uint256 amount, bytes data, bytes operatorData)",
  "function authorizeOperator(address operator)",
  "function revokeOperator(address operator)",
  "function permit(address owner, address spender, uint256 value, uint256 deadline, uint8 v, bytes32 r, bytes32 s)",
]);
/** Permit2's AllowanceTransfer. */
export const PERMIT2_CALLS = parseAbi([
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
/** Calldata of `functionName` (overloads are told apart by the arguments). */
export function encodeCall(abi: typeof TOKEN_CALLS | typeof PERMIT2_CALLS, functionName: string, args: unknown[]): Hex {
  return encodeFunctionData({ abi, functionName, args } as never);
}
