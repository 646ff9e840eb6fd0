// Wire shapes of /v1/chains and /v1/admin/chains. Field rules come from src/chains/fields.ts, which
// chains.json is checked against too.
import { z } from "zod";
import {
  aliases,
  chainDefaults,
  chainFeeBounds,
  chainLinks,
  confirmations,
  displayName,
  evmChainId,
  identifier,
  nativeCurrency,
  rpcUrl,
  rpcUrls,
} from "../../chains/fields.js";

export const CreateChainRequest = z.strictObject({
  name: identifier,
  display_name: displayName,
  chain_id: evmChainId,
  rpc_url: rpcUrl.optional(),
  rpc_urls: rpcUrls.optional(),
  ...chainLinks,
  ...chainDefaults,
  aliases: aliases.default([]),
});

export const UpdateChainRequest = z.strictObject({
  display_name: displayName.optional(),
  rpc_url: rpcUrl.optional(),
  rpc_urls: rpcUrls.optional(),
  ...chainLinks,
  native_currency: nativeCurrency.optional(),
  is_testnet: z.boolean().optional(),
  is_enabled: z.boolean().optional(),
  eip1559: z.boolean().optional(),
  confirmations: confirmations.optional(),
  aliases: aliases.optional(),
  ...chainFeeBounds,
});
export type UpdateChainRequest = z.infer<typeof UpdateChainRequest>;

export const ChainResponse = z.object({
  id: z.string(),
  name: z.string(),
  display_name: z.string(),
  chain_id: z.number().int(),
  native_currency: z.string(),
  is_testnet: z.boolean(),
  is_enabled: z.boolean(),
  rpc_url: z.string().optional(),
  rpc_urls: z.array(z.string()),
  ws_url: z.string().optional(),
  explorer_url: z.string().optional(),
  eip1559: z.boolean(),
  confirmations: z.number().int(),
  aliases: z.array(z.string()),
  max_fee_per_gas_gwei: z.number().nullable(),
  base_fee_multiple: z.number().nullable(),
  created_at: z.string(),
  updated_at: z.string(),
});
export const ChainListResponse = z.object({ chains: z.array(ChainResponse) });

export const ChainParams = z.object({ identifier: z.string().max(100) });
export const AdminParams = z.object({ chain_id: z.string().min(1).max(100) });
