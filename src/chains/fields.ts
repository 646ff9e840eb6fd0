// The rules for a chain's fields, in one place: chains.json (src/chains/registry.ts) and the operators'
// /v1/admin/chains bodies (src/http/schemas/chains.ts) are checked by the same validators.
import { z } from "zod";

export const chainNameSchema = z
  .string()
  .regex(/^[a-z0-9][a-z0-9-]{0,62}$/, "must be lower-case letters, digits and '-', starting with a letter or digit");

function urlWith(protocols: string[], opts: { noUserInfo?: boolean } = {}) {
  return (v: string) => {
    try {
      const u = new URL(v);
      if (!protocols.includes(u.protocol) || u.hostname === "") return false;
      return !(opts.noUserInfo && (u.username || u.password));
    } catch {
      return false;
    }
  };
}

export const rpcUrl = z
  .string()
  .max(2048)
  .refine(urlWith(["http:", "https:", "ws:", "wss:"]), "must be an http(s) or ws(s) URL");
export const wsUrl = z
  .string()
  .max(2048)
  .refine(urlWith(["ws:", "wss:"]), "must be a ws(s) URL");
export const explorerUrl = z
  .string()
  .max(2048)
  .refine(urlWith(["http:", "https:"], { noUserInfo: true }), "must be an http(s) URL without credentials");
// A name or alias made only of digits would never resolve (digits are read as a chain id).
export const identifier = chainNameSchema.refine((v) => !/^\d+$/.test(v), "must not be only digits");
export const displayName = z.string().trim().min(1).max(200);
export const nativeCurrency = z.string().trim().min(1).max(16);
export const evmChainId = z.number().int().positive().max(Number.MAX_SAFE_INTEGER);
export const confirmations = z.number().int().min(0).max(1000);
export const aliases = z.array(identifier).max(32);
export const rpcUrls = z.array(rpcUrl).max(20);
// Fee bounds of a chain (null: the service-wide MAX_FEE_PER_GAS_CAP_GWEI and BASE_FEE_MULTIPLE).
export const maxFeePerGasGwei = z.number().positive().max(1e9);
export const baseFeeMultiple = z.number().min(1).max(1000);

/** What a new chain gets for the settings left out: chains.json and POST /v1/admin/chains alike. */
export const chainDefaults = {
  native_currency: nativeCurrency.default("ETH"),
  is_testnet: z.boolean().default(false),
  is_enabled: z.boolean().default(true),
  eip1559: z.boolean().default(true),
  confirmations: confirmations.default(1),
};
/** The links a chain may have; null clears one. */
export const chainLinks = { ws_url: wsUrl.nullable().optional(), explorer_url: explorerUrl.nullable().optional() };
/** The chain's own fee bounds; null: the service-wide ones. */
export const chainFeeBounds = {
  max_fee_per_gas_gwei: maxFeePerGasGwei.nullable().optional(),
  base_fee_multiple: baseFeeMultiple.nullable().optional(),
};
