-- Per-agent quotas set by operators (src/quotas.ts). NULL: the server's default (AGENT_REQUESTS_PER_MINUTE,
-- MAX_DATA_BYTES). requests_per_minute 0: no request budget for this agent.
ALTER TABLE agents
  ADD COLUMN requests_per_minute integer CHECK (requests_per_minute BETWEEN 0 AND 10000000),
  -- At most geth's 128 KiB transaction size limit: larger data no node would relay anyway.
  ADD COLUMN tx_max_data_bytes integer CHECK (tx_max_data_bytes BETWEEN 0 AND 131072);

-- Request budgets across replicas: each replica counts in memory (the hot path stays a map lookup) and
-- about once a second writes its current one-minute window per agent here and reads the other
-- replicas' live windows (src/quotas.ts). Each replica writes only its own rows, so replicas never
-- wait on each other's row locks.
CREATE TABLE agent_request_counts (
  agent_id      uuid NOT NULL,
  replica_id    uuid NOT NULL,
  window_start  timestamptz NOT NULL,
  count         bigint NOT NULL,
  PRIMARY KEY (agent_id, replica_id)
);
