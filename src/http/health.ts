// Liveness and dependency health. Public: they reveal no configuration, only healthy/degraded.
import type { Context } from "../context.js";
import type { App } from "./types.js";
import { VERSION } from "../version.js";
import { HealthResponse, HsmHealthResponse } from "./schemas/health.js";

async function dbOk(ctx: Context): Promise<boolean> {
  try {
    await ctx.pool.query("SELECT 1");
    return true;
  } catch {
    return false;
  }
}

async function hsmOk(ctx: Context): Promise<boolean> {
  try {
    return (await ctx.signer.health()).status === "ok";
  } catch {
    return false;
  }
}

export async function healthRoutes(app: App, ctx: Context): Promise<void> {
  app.get(
    "/v1/health",
    { config: { public: true }, schema: { tags: ["Health"], summary: "Service health", response: { 200: HealthResponse } } },
    async () => {
      const [db, hsm] = await Promise.all([dbOk(ctx), hsmOk(ctx)]);
      return { status: db && hsm ? ("healthy" as const) : ("degraded" as const), version: VERSION };
    },
  );
  app.get(
    "/v1/health/hsm",
    { config: { public: true }, schema: { tags: ["Health"], summary: "HSM health", response: { 200: HsmHealthResponse } } },
    async () => ({ status: (await hsmOk(ctx)) ? ("healthy" as const) : ("degraded" as const), version: VERSION }),
  );
}
