// Wire shape of the audit log query.
import { z } from "zod";
import { period } from "./common.js";

export const Query = z.object({
  action: z.string().max(100).optional(),
  actor_id: z.string().max(100).optional(),
  resource_id: z.string().max(100).optional(),
  ...period,
  limit: z.coerce.number().int().min(1).max(1000).default(100),
  cursor: z.string().max(40).optional(),
});
