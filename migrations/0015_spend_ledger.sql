-- The agents' rolling spend, kept as it happens instead of summed from every transaction on every check.
--
-- Reading the rolling 24 h (value, worst-case fees) and today's count used to sum all of the agent's
-- counted transactions of the last 24 h, under the agent's spend lock, once per commit group: a cost
-- that grew with the agent's volume and sat on the path every submission waits for. Now each change to
-- a counted transaction adds its contribution to a per-agent, per-minute bucket, and a check sums at most
-- 1,440 buckets plus the few transactions of the one minute the window's far edge cuts through
-- (agent_spend below). The result is the same to the wei.
--
-- The buckets are written by triggers on `transactions`, so every writer (submit groups, sign-only rows,
-- the tracker's refusals and fee bumps, operators' speed-ups and cancels, gap fills, deletes) keeps them
-- right without knowing they exist. The triggers are per statement: a statement's changes are summed
-- per (agent, minute) and applied in (agent, minute) order, so two statements that touch the same
-- buckets lock them in the same order and cannot deadlock on them.

CREATE TABLE agent_spend_minutes (
  agent_id   uuid NOT NULL,
  minute     timestamptz NOT NULL,              -- date_trunc('minute', created_at) of the transactions it sums
  value_wei  numeric(78,0) NOT NULL DEFAULT 0,
  fee_wei    numeric(78,0) NOT NULL DEFAULT 0,
  count      bigint NOT NULL DEFAULT 0,
  PRIMARY KEY (agent_id, minute)
);

-- What counts toward an agent's limits, as db/agents.ts says it (COUNTS): every row whose signature left
-- the service; a node's refusal uncounts a row only when its bytes were never handed out.
CREATE FUNCTION transaction_counts(counts_toward_limits boolean, status text, signed_tx_disclosed boolean) RETURNS boolean
  LANGUAGE sql IMMUTABLE PARALLEL SAFE
  AS $$ SELECT counts_toward_limits AND (status NOT IN ('failed', 'simulation_failed') OR signed_tx_disclosed) $$;

-- Adds a statement's signed contributions (`d`: agent_id, created_at, value_wei, fee_wei, n) to the buckets.
CREATE FUNCTION spend_ledger_apply() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP = 'INSERT' THEN
    INSERT INTO agent_spend_minutes AS m (agent_id, minute, value_wei, fee_wei, count)
    SELECT agent_id, date_trunc('minute', created_at), sum(value_wei), sum(fee_wei), count(*)
      FROM new_rows WHERE transaction_counts(counts_toward_limits, status, signed_tx_disclosed)
     GROUP BY 1, 2 ORDER BY 1, 2
    ON CONFLICT (agent_id, minute) DO UPDATE
      SET value_wei = m.value_wei + EXCLUDED.value_wei, fee_wei = m.fee_wei + EXCLUDED.fee_wei, count = m.count + EXCLUDED.count;
  ELSIF TG_OP = 'DELETE' THEN
    INSERT INTO agent_spend_minutes AS m (agent_id, minute, value_wei, fee_wei, count)
    SELECT agent_id, date_trunc('minute', created_at), -sum(value_wei), -sum(fee_wei), -count(*)
      FROM old_rows WHERE transaction_counts(counts_toward_limits, status, signed_tx_disclosed)
     GROUP BY 1, 2 ORDER BY 1, 2
    ON CONFLICT (agent_id, minute) DO UPDATE
      SET value_wei = m.value_wei + EXCLUDED.value_wei, fee_wei = m.fee_wei + EXCLUDED.fee_wei, count = m.count + EXCLUDED.count;
  ELSE
    -- An update: what the rows count for now, minus what they counted for before. Most updates (leases,
    -- broadcast, receipts) change neither, and write nothing.
    INSERT INTO agent_spend_minutes AS m (agent_id, minute, value_wei, fee_wei, count)
    SELECT agent_id, minute, sum(v), sum(f), sum(c)
      FROM (SELECT agent_id, date_trunc('minute', created_at) AS minute, value_wei AS v, fee_wei AS f, 1 AS c
              FROM new_rows WHERE transaction_counts(counts_toward_limits, status, signed_tx_disclosed)
            UNION ALL
            SELECT agent_id, date_trunc('minute', created_at), -value_wei, -fee_wei, -1
              FROM old_rows WHERE transaction_counts(counts_toward_limits, status, signed_tx_disclosed)) d
     GROUP BY 1, 2
    HAVING sum(v) <> 0 OR sum(f) <> 0 OR sum(c) <> 0
     ORDER BY 1, 2
    ON CONFLICT (agent_id, minute) DO UPDATE
      SET value_wei = m.value_wei + EXCLUDED.value_wei, fee_wei = m.fee_wei + EXCLUDED.fee_wei, count = m.count + EXCLUDED.count;
  END IF;
  RETURN NULL;
END $$;

CREATE TRIGGER transactions_spend_insert AFTER INSERT ON transactions
  REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION spend_ledger_apply();
CREATE TRIGGER transactions_spend_update AFTER UPDATE ON transactions
  REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION spend_ledger_apply();
CREATE TRIGGER transactions_spend_delete AFTER DELETE ON transactions
  REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION spend_ledger_apply();

-- The rolling spend of agents (value and worst-case fees over the last 24 h, transactions since 00:00
-- UTC): every bucket wholly inside the window, plus the counted transactions of the one minute its far
-- edge cuts through, read from the rows themselves so the window is exact.
CREATE FUNCTION agent_spend(p_agent_ids uuid[])
RETURNS TABLE (agent_id uuid, spent_wei numeric, fees_wei numeric, count_today bigint) LANGUAGE sql STABLE AS $$
  WITH w AS (
    SELECT now() - interval '24 hours' AS edge, date_trunc('day', now() AT TIME ZONE 'UTC') AT TIME ZONE 'UTC' AS midnight
  ), parts AS (
    SELECT m.agent_id, m.value_wei, m.fee_wei, m.count, m.minute >= w.midnight AS today
      FROM agent_spend_minutes m, w
     WHERE m.agent_id = ANY(p_agent_ids) AND m.minute > w.edge
    UNION ALL
    SELECT t.agent_id, t.value_wei, t.fee_wei, 1, t.created_at >= w.midnight
      FROM transactions t, w
     WHERE t.agent_id = ANY(p_agent_ids) AND t.created_at > w.edge
       AND t.created_at < date_trunc('minute', w.edge) + interval '1 minute'
       AND transaction_counts(t.counts_toward_limits, t.status, t.signed_tx_disclosed)
  )
  SELECT a.id, coalesce(sum(p.value_wei), 0), coalesce(sum(p.fee_wei), 0), coalesce(sum(p.count) FILTER (WHERE p.today), 0)
    FROM unnest(p_agent_ids) AS a(id) LEFT JOIN parts p ON p.agent_id = a.id
   GROUP BY a.id
$$;

-- The same under the agents' spend locks, in one round trip: locks each agent's agent_spend_locks row
-- (in id order, so two callers never wait on each other in a cycle) until the caller's transaction ends,
-- drops buckets that left the window, then reads. Each statement of a plpgsql function takes a new
-- snapshot, so the read sees everything committed by whoever held the locks before.
CREATE FUNCTION lock_agent_spend(p_agent_ids uuid[])
RETURNS TABLE (agent_id uuid, spent_wei numeric, fees_wei numeric, count_today bigint) LANGUAGE plpgsql AS $$
BEGIN
  PERFORM 1 FROM agent_spend_locks l WHERE l.agent_id = ANY(p_agent_ids) ORDER BY l.agent_id FOR UPDATE;
  DELETE FROM agent_spend_minutes m WHERE m.agent_id = ANY(p_agent_ids) AND m.minute < now() - interval '25 hours';
  RETURN QUERY SELECT * FROM agent_spend(p_agent_ids);
END $$;

-- A commit group's first round trip: the agents' spend locks and rolling spend (lock_agent_spend), then
-- the group's nonces under each (chain, address) row lock (reserve_nonces, migrations/0007), in that
-- lock order. The nonces are reserved before the limits are checked; a group in which a request is
-- denied rolls back and commits again without it (src/pipeline/submit.ts).
CREATE FUNCTION lock_spend_reserve_nonces(
  p_agent_ids uuid[], p_chain_id bigint, p_addresses text[], p_latest bigint[], p_pending bigint[], p_counts integer[])
RETURNS TABLE (agent_id uuid, spent_wei numeric, fees_wei numeric, count_today bigint, address text, nonces bigint[])
LANGUAGE plpgsql AS $$
BEGIN
  RETURN QUERY SELECT s.agent_id, s.spent_wei, s.fees_wei, s.count_today, NULL::text, NULL::bigint[] FROM lock_agent_spend(p_agent_ids) s;
  RETURN QUERY
    SELECT NULL::uuid, NULL::numeric, NULL::numeric, NULL::bigint, a.address, reserve_nonces(p_chain_id, a.address, a.latest, a.pending, a.n)
      FROM unnest(p_addresses, p_latest, p_pending, p_counts) WITH ORDINALITY AS a(address, latest, pending, n, i)
     ORDER BY a.i;
END $$;

-- The buckets of what is already stored (a little over the window: the edge minute is read from the rows).
INSERT INTO agent_spend_minutes (agent_id, minute, value_wei, fee_wei, count)
SELECT agent_id, date_trunc('minute', created_at), sum(value_wei), sum(fee_wei), count(*)
  FROM transactions
 WHERE created_at > now() - interval '25 hours' AND transaction_counts(counts_toward_limits, status, signed_tx_disclosed)
 GROUP BY 1, 2;
