-- The agents' rolling spend, kept as it happens instead of summed from every transaction on every check.
--
-- Reading the rolling 24 h (value, worst-case fees) and today's count used to sum all of the agent's
-- counted transactions of the last 24 h, under the agent's spend lock, once per commit group: a cost
-- that grew with the agent's volume and sat on the path every submission waits for. Now each change to
-- a counted transaction adds its contribution to a per-agent, per-minute bucket, and a check sums at most
-- 1,440 buckets plus the few transactions of the one minute the window's far edge cuts through
-- (agent_spend below). The result is the same to the wei.
--
-- The ledger is written by triggers on `transactions`, so every writer (submit groups, sign-only rows,
-- the tracker's refusals and fee bumps, operators' speed-ups and cancels, gap fills, deletes) keeps it
-- right without knowing it exists:
--   - inserts (a commit group's rows, one statement) are summed per (agent, minute) and added to
--     agent_spend_minutes in (agent, minute) order, so two statements that touch the same buckets lock
--     them in the same order and cannot deadlock on them;
--   - the rare update or delete that changes what a row counts for (a refusal that uncounts it, a fee
--     bump) appends the difference to agent_spend_adjustments, which has no key and so takes no lock
--     another statement could wait on. Updates that change nothing counted (leases, broadcast,
--     receipts: nearly all of them) do not call the trigger at all.

CREATE TABLE agent_spend_minutes (
  agent_id   uuid NOT NULL,
  minute     timestamptz NOT NULL,              -- date_trunc('minute', created_at) of the transactions it sums
  value_wei  numeric(78,0) NOT NULL DEFAULT 0,
  fee_wei    numeric(78,0) NOT NULL DEFAULT 0,
  count      bigint NOT NULL DEFAULT 0,
  PRIMARY KEY (agent_id, minute)
);

CREATE TABLE agent_spend_adjustments (
  agent_id   uuid NOT NULL,
  minute     timestamptz NOT NULL,              -- date_trunc('minute', created_at) of the transaction it corrects
  value_wei  numeric(78,0) NOT NULL,
  fee_wei    numeric(78,0) NOT NULL,
  count      bigint NOT NULL
);
CREATE INDEX agent_spend_adjustments_agent ON agent_spend_adjustments (agent_id, minute);

-- What counts toward an agent's limits, as db/agents.ts says it: every row whose signature left the
-- service; a node's refusal uncounts a row only when its bytes were never handed out.
CREATE FUNCTION transaction_counts(counts_toward_limits boolean, status text, signed_tx_disclosed boolean) RETURNS boolean
  LANGUAGE sql IMMUTABLE PARALLEL SAFE
  AS $$ SELECT counts_toward_limits AND (status NOT IN ('failed', 'simulation_failed') OR signed_tx_disclosed) $$;

CREATE FUNCTION spend_ledger_insert() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO agent_spend_minutes AS m (agent_id, minute, value_wei, fee_wei, count)
  SELECT agent_id, date_trunc('minute', created_at), sum(value_wei), sum(fee_wei), count(*)
    FROM new_rows WHERE transaction_counts(counts_toward_limits, status, signed_tx_disclosed)
   GROUP BY 1, 2 ORDER BY 1, 2
  ON CONFLICT (agent_id, minute) DO UPDATE
    SET value_wei = m.value_wei + EXCLUDED.value_wei, fee_wei = m.fee_wei + EXCLUDED.fee_wei, count = m.count + EXCLUDED.count;
  RETURN NULL;
END $$;

-- One changed row: what it counts for now (nothing after a delete), minus what it counted for before.
CREATE FUNCTION spend_ledger_adjust() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP = 'UPDATE' AND transaction_counts(NEW.counts_toward_limits, NEW.status, NEW.signed_tx_disclosed) THEN
    INSERT INTO agent_spend_adjustments VALUES (NEW.agent_id, date_trunc('minute', NEW.created_at), NEW.value_wei, NEW.fee_wei, 1);
  END IF;
  IF transaction_counts(OLD.counts_toward_limits, OLD.status, OLD.signed_tx_disclosed) THEN
    INSERT INTO agent_spend_adjustments VALUES (OLD.agent_id, date_trunc('minute', OLD.created_at), -OLD.value_wei, -OLD.fee_wei, -1);
  END IF;
  RETURN NULL;
END $$;

CREATE TRIGGER transactions_spend_insert AFTER INSERT ON transactions
  REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION spend_ledger_insert();
CREATE TRIGGER transactions_spend_update AFTER UPDATE ON transactions FOR EACH ROW
  WHEN (transaction_counts(OLD.counts_toward_limits, OLD.status, OLD.signed_tx_disclosed)
          IS DISTINCT FROM transaction_counts(NEW.counts_toward_limits, NEW.status, NEW.signed_tx_disclosed)
        OR (transaction_counts(NEW.counts_toward_limits, NEW.status, NEW.signed_tx_disclosed)
            AND (OLD.value_wei, OLD.fee_wei, OLD.agent_id, OLD.created_at) IS DISTINCT FROM (NEW.value_wei, NEW.fee_wei, NEW.agent_id, NEW.created_at)))
  EXECUTE FUNCTION spend_ledger_adjust();
CREATE TRIGGER transactions_spend_delete AFTER DELETE ON transactions FOR EACH ROW
  WHEN (transaction_counts(OLD.counts_toward_limits, OLD.status, OLD.signed_tx_disclosed))
  EXECUTE FUNCTION spend_ledger_adjust();

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
    SELECT j.agent_id, j.value_wei, j.fee_wei, j.count, j.minute >= w.midnight
      FROM agent_spend_adjustments j, w
     WHERE j.agent_id = ANY(p_agent_ids) AND j.minute > w.edge
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
  DELETE FROM agent_spend_adjustments j WHERE j.agent_id = ANY(p_agent_ids) AND j.minute < now() - interval '25 hours';
  RETURN QUERY SELECT * FROM agent_spend(p_agent_ids);
END $$
-- Planned once per connection: re-planning these statements for each group cost more than running them.
SET plan_cache_mode = force_generic_plan;

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
