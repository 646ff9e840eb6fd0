// Wire shapes of the health routes.
import { z } from "zod";

export const HealthResponse = z.object({ status: z.enum(["healthy", "degraded"]), version: z.string() });

export const HsmHealthResponse = z.object({ status: z.enum(["healthy", "degraded"]), version: z.string() });
