// Wire shapes of the operators' transaction history and its export.
import { z } from "zod";
import { UUID } from "../../uuid.js";
import { ListQuery } from "./transactions.js";

const agentId = z
  .string()
  .max(100)
  .refine((v) => UUID.test(v), "must be an agent id (uuid)");

export const HistoryQuery = ListQuery.extend({ agent_id: agentId.optional() });
export type HistoryQuery = z.infer<typeof HistoryQuery>;

export const ExportQuery = HistoryQuery.omit({ limit: true, cursor: true }).extend({
  format: z.enum(["jsonl", "csv"]).default("jsonl"),
});
export type ExportQuery = z.infer<typeof ExportQuery>;
