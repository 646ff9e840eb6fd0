// Contracts for the signing-intent tests: Solidity beside this file, compiled into intents-compiled.json
// (solc 0.8.28, optimizer 200 runs, evm cancun; runtime bytecode included for anvil_setCode). To rebuild:
//   npm i --no-save solc@0.8.28 && node test/contracts/compile-intents.cjs test/contracts
import type { Abi, Hex } from "viem";
import compiled from "./intents-compiled.json" with { type: "json" };

export interface IntentContract {
  abi: Abi;
  bytecode: Hex;
  deployedBytecode: Hex;
}

const contracts = compiled.contracts as unknown as Record<string, IntentContract>;

/** USDC-like: 6 decimals, public mint, EIP-2612 permit, EIP-3009 transfer/receiveWithAuthorization. */
export const IntentToken: IntentContract = contracts.IntentToken!;
/** Permit2-compatible (domain "Permit2", same type strings): permit + transferFrom, permitTransferFrom. */
export const MiniPermit2: IntentContract = contracts.MiniPermit2!;
/** EIP-7702 delegate: ping() counts in the delegating account's storage; whoAmI(). */
export const Delegate7702: IntentContract = contracts.Delegate7702!;
