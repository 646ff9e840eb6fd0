// Wire shapes of the operators' routes on one transaction.
import { z } from "zod";

export const TxParams = z.object({ tx_id: z.string().max(100) });
