-- Per-agent quotas set by operators (src/quotas.ts). NULL: the server's default (AGENT_REQUESTS_PER_MINUTE,
-- MAX_DATA_BYTES). requests_per_minute 0: no request budget for this agent.
ALTER TABLE agents
  ADD COLUMN requests_per_minute integer CHECK (requests_per_minute BETWEEN 0 AND 10000000),
  -- At most geth's 128 KiB transaction size limit: larger data no node would relay anyway.
  ADD COLUMN tx_max_data_bytes integer CHECK (tx_max_data_bytes BETWEEN 0 AND 131072);
