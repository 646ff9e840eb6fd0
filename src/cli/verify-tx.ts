// verify-tx: does a stored signed transaction say what its row says? Recovers the signer from the
// raw bytes and compares it, the hash and the transaction fields with the row.
import { keccak256, parseTransaction, recoverTransactionAddress, type Hex, type TransactionSerialized } from "viem";
import type { TxRow } from "../db/transactions.js";

export interface Check {
  check: string;
  ok: boolean;
  expected: string | null;
  actual: string | null;
}

export interface VerifyTxResult {
  tx_id: string;
  ok: boolean;
  signer: string | null;
  checks: Check[];
}

const lower = (v: string | null | undefined) => (v === null || v === undefined ? null : v.toLowerCase());
const num = (v: bigint | number | string | null | undefined) => (v === null || v === undefined ? null : BigInt(v).toString());
const hexData = (v: string | null | undefined) => (!v || v === "0x" ? "0x" : v.toLowerCase());

export async function verifyStoredTransaction(row: TxRow): Promise<VerifyTxResult> {
  const checks: Check[] = [];
  const add = (check: string, expected: string | null, actual: string | null) =>
    checks.push({ check, ok: expected === actual, expected, actual });
  const done = (signer: string | null): VerifyTxResult => ({ tx_id: row.id, ok: checks.every((c) => c.ok), signer, checks });

  if (!row.signed_tx) {
    checks.push({ check: "signed_tx", ok: false, expected: "a signed transaction", actual: null });
    return done(null);
  }
  const raw = row.signed_tx as Hex;
  let parsed: ReturnType<typeof parseTransaction>;
  try {
    parsed = parseTransaction(raw);
  } catch (err) {
    checks.push({
      check: "parse",
      ok: false,
      expected: "a serialized EVM transaction",
      actual: (err as { shortMessage?: string }).shortMessage ?? (err as Error).message,
    });
    return done(null);
  }
  let signer: string | null = null;
  try {
    signer = await recoverTransactionAddress({ serializedTransaction: raw as TransactionSerialized });
  } catch (err) {
    checks.push({
      check: "signature",
      ok: false,
      expected: lower(row.from_address),
      actual: `unrecoverable: ${(err as { shortMessage?: string }).shortMessage ?? (err as Error).message}`,
    });
    return done(null);
  }
  add("signer", lower(row.from_address), lower(signer));
  add("tx_hash", lower(row.tx_hash), keccak256(raw));
  add("to", lower(row.to_address), lower(parsed.to));
  add("value_wei", num(row.value_wei), num(parsed.value ?? 0n));
  add("nonce", num(row.nonce), num(parsed.nonce ?? 0));
  add("chain_id", num(row.chain_id), num(parsed.chainId));
  if (row.gas_limit !== null) add("gas_limit", num(row.gas_limit), num(parsed.gas));
  add("data", hexData(row.data), hexData(parsed.data));
  if (row.max_fee_per_gas !== null) add("max_fee_per_gas", num(row.max_fee_per_gas), num(parsed.maxFeePerGas));
  if (row.max_priority_fee_per_gas !== null)
    add("max_priority_fee_per_gas", num(row.max_priority_fee_per_gas), num(parsed.maxPriorityFeePerGas));
  if (row.gas_price !== null) add("gas_price", num(row.gas_price), num(parsed.gasPrice));
  return done(signer);
}
