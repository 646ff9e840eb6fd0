// Another replica of a test's service, in the same process and on the same database, as a second
// process would run: its own pool, chain registry and clients, credentials, admission, commit groups
// and liveness lock, so the two coordinate only through PostgreSQL. The HSM token is shared (one
// PKCS#11 module per process), and so is the local chain.
import { buildApp } from "../../src/app.js";
import { AuthService } from "../../src/auth/service.js";
import { ChainClients } from "../../src/chains/clients.js";
import { ChainRegistry } from "../../src/chains/registry.js";
import type { Context } from "../../src/context.js";
import { createPool } from "../../src/db/pool.js";
import type { App } from "../../src/http/types.js";
import { AddressAdmission } from "../../src/pipeline/admission.js";
import { CommitGroups } from "../../src/pipeline/commit-groups.js";
import { ProcessLiveness } from "../../src/pipeline/liveness.js";
import type { TestService } from "./service.js";

export interface Replica {
  app: App;
  ctx: Context;
  close(): Promise<void>;
}

export async function startReplica(svc: TestService, poolSize = 20): Promise<Replica> {
  const pool = createPool(svc.databaseUrl, { max: poolSize });
  const chains = new ChainRegistry(pool, svc.ctx.config.rpcOverrides);
  if (svc.ctx.localChainUrl) chains.setRuntimeRpc("local", [svc.ctx.localChainUrl]);
  await chains.refresh();
  const liveness = await ProcessLiveness.start(svc.databaseUrl, svc.ctx.log);
  const ctx: Context = {
    ...svc.ctx,
    pool,
    chains,
    liveness,
    clients: new ChainClients(),
    auth: await AuthService.create(pool, svc.ctx.config.jwtDefaultTtlSeconds),
    admission: new AddressAdmission(svc.ctx.config.maxInflightPerAddress),
    commits: new CommitGroups(),
    close: async () => {
      await liveness.stop();
      await pool.end();
    },
  };
  const app = await buildApp(ctx);
  return {
    app,
    ctx,
    close: async () => {
      await app.close();
      await ctx.close();
    },
  };
}
