// The test contracts, compiled: Solidity sources beside this file, bytecode and ABI in compiled.json
// (solc 0.8.28, optimizer 200 runs, evm cancun). To rebuild after editing a .sol file:
//   npm i --no-save solc@0.8.28 && node test/contracts/compile.cjs test/contracts
import type { Abi, Hex } from "viem";
import compiled from "./compiled.json" with { type: "json" };

export interface CompiledContract {
  abi: Abi;
  bytecode: Hex;
}

const contracts = compiled.contracts as unknown as Record<string, CompiledContract & { source: string }>;

/** ERC-20 with name/symbol from the constructor, 6 decimals, public mint, increase/decreaseAllowance, transferAndCall. */
export const TestToken: CompiledContract = contracts.TestToken!;
/** failWithReason, failWithCustomError(uint256), burnGas, divide(a, b), bump, forward(to) payable. */
export const Failures: CompiledContract = contracts.Failures!;
/** sweep(token, to, amount): transferFrom(msg.sender → to) with the caller's allowance; multicall(bytes[]). */
export const Router: CompiledContract = contracts.Router!;
