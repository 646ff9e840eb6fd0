// Wire shape of the audit log query.
import { z } from "zod";

export const Query = z.object({
  action: z.string().max(100).optional(),
  actor_id: z.string().max(100).optional(),
  resource_id: z.string().max(100).optional(),
  from: z.iso.datetime({ offset: true }).optional(),
  to: z.iso.datetime({ offset: true }).optional(),
  limit: z.coerce.number().int().min(1).max(1000).default(100),
  cursor: z.string().max(40).optional(),
});
