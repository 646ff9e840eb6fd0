// EIP-712 typed data as wallets and x402 clients build it: the member lists of the kinds the service
// recognises, and builders of whole documents for the on-chain tests (chain 31337, the test token).
import type { Address, Hex } from "viem";
import { PERMIT2_ADDRESS } from "../../src/pipeline/typed-data.js";

const PERMIT2 = PERMIT2_ADDRESS as Address;

/** EIP-2612 Permit. */
export const PERMIT = [
  { name: "owner", type: "address" },
  { name: "spender", type: "address" },
  { name: "value", type: "uint256" },
  { name: "nonce", type: "uint256" },
  { name: "deadline", type: "uint256" },
];

/** EIP-3009 TransferWithAuthorization (and ReceiveWithAuthorization). */
export const TRANSFER_WITH_AUTHORIZATION = [
  { name: "from", type: "address" },
  { name: "to", type: "address" },
  { name: "value", type: "uint256" },
  { name: "validAfter", type: "uint256" },
  { name: "validBefore", type: "uint256" },
  { name: "nonce", type: "bytes32" },
];

/** Permit2 AllowanceTransfer's PermitDetails. */
export const PERMIT_DETAILS = [
  { name: "token", type: "address" },
  { name: "amount", type: "uint160" },
  { name: "expiration", type: "uint48" },
  { name: "nonce", type: "uint48" },
];

/** Permit2 SignatureTransfer's TokenPermissions. */
export const TOKEN_PERMISSIONS = [
  { name: "token", type: "address" },
  { name: "amount", type: "uint256" },
];

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
      [primaryType]: TRANSFER_WITH_AUTHORIZATION,
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
      Permit: PERMIT,
    },
    primaryType: "Permit",
    domain: { name: "USD Coin", version: "2", chainId: 31337, verifyingContract: token },
    message: { owner, spender, value: value.toString(), nonce: nonce.toString(), deadline: deadline.toString() },
  };
}

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
      TokenPermissions: TOKEN_PERMISSIONS,
    },
    primaryType: "PermitTransferFrom",
    domain: { name: "Permit2", chainId: 31337, verifyingContract: PERMIT2 },
    message: { permitted: { token, amount: amount.toString() }, spender, nonce: nonce.toString(), deadline: deadline.toString() },
  };
}
