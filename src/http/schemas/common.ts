// Wire pieces several resources share, each defined once.
import { z } from "zod";

/** A chain by name, alias or numeric id (a number is read as its decimal string). */
export const chainRef = z.union([z.string().min(1).max(64), z.number().int().positive()]).transform(String);

/** The path of one of the agent's signing keys. */
export const signingKeyPath = z
  .string()
  .min(1)
  .max(256)
  .regex(/^[A-Za-z0-9._\/-]+$/, "may contain letters, digits, '.', '_', '-' and '/'");

/** Fields of the reference requests that belong to non-EVM chains or features this service does not offer. */
export const UNSUPPORTED_FIELDS = [
  "destination_tag",
  "memo",
  "fee_rate_sat_per_vbyte",
  "fee_limit_sun",
  "token_mint",
  "token_decimals",
  "ttl",
  "xrpl_tx_json",
  "raw_transaction",
  "tron_transaction",
] as const;

/** A list's time window (ISO 8601 with an offset). */
export const period = {
  from: z.iso.datetime({ offset: true }).optional(),
  to: z.iso.datetime({ offset: true }).optional(),
};

/** A list's page size. */
export const pageLimit = z.coerce.number().int().min(1).max(500).default(50);

/** Keyset pagination: the page size and the cursor the previous page returned. */
export const page = { limit: pageLimit, cursor: z.string().max(200).optional() };

// Any string: an agent naming another (or a malformed) id must get 403/404, not a 400 about its shape.
export const AgentParams = z.object({ agent_id: z.string().max(100) });
