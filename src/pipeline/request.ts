// The transaction request body shared by submit, sign and simulate, validated with zod. Unknown fields
// are rejected: a typo like `gaslimit` must not silently fall back to an estimate.
import { isAddress } from "viem";
import { z } from "zod";
import { MAX_UINT256, parseMajor } from "../units.js";

export const MAX_EXPLICIT_NONCE = 2 ** 32 - 1;

const address = z
  .string()
  .refine((v) => /^0x[0-9a-fA-F]{40}$/.test(v), "must be a 0x-prefixed 20-byte hex address")
  .refine((v) => isAddress(v, { strict: true }), "has an invalid EIP-55 checksum (use all lower case to skip it)");

const hexData = z
  .string()
  .max(4 * 1024 * 1024, "is too large")
  .regex(/^0x([0-9a-fA-F]{2})*$/, "must be 0x-prefixed hex with an even number of digits");

const wei = z
  .string()
  .regex(/^(0|[1-9]\d{0,77})$/, "must be a non-negative integer number of wei, as a decimal string")
  // zod runs this even after the regex failed, so it re-checks the shape before BigInt().
  .refine((v) => !/^\d+$/.test(v) || BigInt(v) <= MAX_UINT256, "is larger than 2^256-1");

const majorValue = z
  .string()
  .refine((v) => parseMajor(v) !== undefined, "must be a non-negative decimal string in the native unit with at most 18 decimals (e.g. \"0.5\")");

// Fields of the reference request that belong to non-EVM chains or features this service does not offer.
const UNSUPPORTED = ["destination_tag", "memo", "fee_rate_sat_per_vbyte", "fee_limit_sun", "token_mint", "token_decimals", "ttl", "xrpl_tx_json", "raw_transaction", "tron_transaction", "approval_id"] as const;

export const TransactionRequestSchema = z
  .strictObject({
    to: address,
    value: majorValue,
    chain: z.union([z.string().min(1).max(64), z.number().int().positive()]).transform(String),
    data: hexData.optional(),
    signing_key_path: z.string().min(1).max(256).regex(/^[A-Za-z0-9._\/-]+$/, "may contain letters, digits, '.', '_', '-' and '/'").optional(),
    // EIP-2681 allows up to 2^64 - 1; no key of this service gets near 2^32, and larger values are refused
    // here rather than in the signer. Which nonces are accepted at all: pipeline/nonce.ts.
    nonce: z.number().int().min(0).max(MAX_EXPLICIT_NONCE).optional(),
    gas_limit: z.number().int().min(21_000).max(1_000_000_000).optional(),
    gas_price: wei.optional(),
    max_fee_per_gas: wei.optional(),
    max_priority_fee_per_gas: wei.optional(),
    simulate_first: z.boolean().optional(),
    mode: z.literal("eoa", { error: "only 'eoa' is supported" }).optional(),
    gasless: z.literal(false, { error: "gasless transactions are not supported" }).optional(),
    ...Object.fromEntries(UNSUPPORTED.map((k) => [k, z.never({ error: "is not supported for EVM transactions" }).optional()])),
  })
  .superRefine((r, ctx) => {
    // Runs even when a field already failed its own check: read amounts defensively.
    const big = (v: string | undefined) => (v !== undefined && /^\d{1,78}$/.test(v) ? BigInt(v) : undefined);
    if (r.gas_price !== undefined && (r.max_fee_per_gas !== undefined || r.max_priority_fee_per_gas !== undefined)) {
      ctx.addIssue({ code: "custom", path: ["gas_price"], message: "cannot be combined with max_fee_per_gas / max_priority_fee_per_gas" });
    }
    if ((r.max_fee_per_gas === undefined) !== (r.max_priority_fee_per_gas === undefined)) {
      ctx.addIssue({ code: "custom", path: [r.max_fee_per_gas === undefined ? "max_fee_per_gas" : "max_priority_fee_per_gas"], message: "max_fee_per_gas and max_priority_fee_per_gas go together" });
    }
    const maxFee = big(r.max_fee_per_gas);
    const tip = big(r.max_priority_fee_per_gas);
    if (maxFee !== undefined && tip !== undefined && tip > maxFee) {
      ctx.addIssue({ code: "custom", path: ["max_priority_fee_per_gas"], message: "must not exceed max_fee_per_gas" });
    }
  });

export type TransactionRequestBody = z.input<typeof TransactionRequestSchema>;
export type TransactionRequest = z.output<typeof TransactionRequestSchema>;

/** The request as the pipeline uses it: amounts as bigint, addresses lower-case. */
export interface Intent {
  to: `0x${string}`;
  valueWei: bigint;
  chain: string;
  data?: `0x${string}`;
  signingKeyPath?: string;
  nonce?: number;
  gasLimit?: bigint;
  gasPrice?: bigint;
  maxFeePerGas?: bigint;
  maxPriorityFeePerGas?: bigint;
  simulateFirst: boolean;
}

export function toIntent(r: TransactionRequest): Intent {
  return {
    to: r.to.toLowerCase() as `0x${string}`,
    valueWei: parseMajor(r.value)!,
    chain: r.chain,
    data: r.data && r.data !== "0x" ? (r.data.toLowerCase() as `0x${string}`) : undefined,
    signingKeyPath: r.signing_key_path,
    nonce: r.nonce,
    gasLimit: r.gas_limit !== undefined ? BigInt(r.gas_limit) : undefined,
    gasPrice: r.gas_price !== undefined ? BigInt(r.gas_price) : undefined,
    maxFeePerGas: r.max_fee_per_gas !== undefined ? BigInt(r.max_fee_per_gas) : undefined,
    maxPriorityFeePerGas: r.max_priority_fee_per_gas !== undefined ? BigInt(r.max_priority_fee_per_gas) : undefined,
    simulateFirst: r.simulate_first ?? false,
  };
}
