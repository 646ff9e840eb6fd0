// Startup recovery. A row committed as `signed` whose send never got an answer — the process died
// between COMMIT and the send, or the send timed out — holds a signature and a nonce that nothing
// else will use: it is sent now, before the tracker's first regular pass, with the stored bytes (no
// second signature, so no second transaction and no nonce gap). The same lease as every pass makes
// this safe with other replicas starting or running; a row another replica's request is still
// sending (signed within the grace of one broadcast timeout per RPC URL) is left to it.
import type { Chain } from "../chains/registry.js";
import type { TrackerDeps } from "./types.js";

/**
 * Sends every chain's signed-but-unsent rows once, through `runChain` (the tracker's pass on one
 * chain); returns how many were picked up.
 */
export async function recoverUnsent(
  deps: Pick<TrackerDeps, "pool" | "chains" | "log">,
  runChain: (chain: Chain, o: { onlyUnsent: true }) => Promise<number>,
): Promise<number> {
  const { rows } = await deps.pool.query<{ chain_id: string; n: string }>(
    "SELECT chain_id, count(*) AS n FROM transactions WHERE status = 'signed' GROUP BY chain_id",
  );
  let total = 0;
  for (const r of rows) {
    const chain = deps.chains.resolve(Number(r.chain_id));
    if (!chain || chain.rpc_urls.length === 0) continue;
    total += await runChain(chain, { onlyUnsent: true }).catch(
      (err) => (deps.log.warn({ err, chain: chain.name }, "startup recovery failed on a chain; the tracker will retry"), 0),
    );
  }
  return total;
}
