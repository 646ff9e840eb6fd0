-- Which signing keys an agent may use follows from its grants, the keys' rows and its shared_signer switch
-- (src/pipeline/resolve.ts). A replica remembers the keys an agent was found allowed to use, per value of
-- agents.key_access_version, which every request reads with the agent row: these triggers bump it
-- whenever any of those facts changes, so a revoked grant, a deactivated key or a new per-agent key
-- counts from the next request on, on every replica, without asking the database about keys each time.
ALTER TABLE agents ADD COLUMN key_access_version bigint NOT NULL DEFAULT 0;

-- The agent's own switch.
CREATE FUNCTION agents_key_access_bump() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  NEW.key_access_version := OLD.key_access_version + 1;
  RETURN NEW;
END $$;
CREATE TRIGGER agents_shared_signer_changed BEFORE UPDATE OF shared_signer ON agents
  FOR EACH ROW WHEN (OLD.shared_signer IS DISTINCT FROM NEW.shared_signer) EXECUTE FUNCTION agents_key_access_bump();

-- A grant given or taken back: the agents it names.
CREATE FUNCTION signing_key_grants_bump() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP = 'INSERT' THEN
    UPDATE agents SET key_access_version = key_access_version + 1 WHERE id IN (SELECT agent_id FROM changed);
  ELSE
    UPDATE agents SET key_access_version = key_access_version + 1 WHERE id IN (SELECT agent_id FROM gone);
  END IF;
  RETURN NULL;
END $$;
CREATE TRIGGER signing_key_grants_inserted AFTER INSERT ON signing_key_grants
  REFERENCING NEW TABLE AS changed FOR EACH STATEMENT EXECUTE FUNCTION signing_key_grants_bump();
CREATE TRIGGER signing_key_grants_deleted AFTER DELETE ON signing_key_grants
  REFERENCING OLD TABLE AS gone FOR EACH STATEMENT EXECUTE FUNCTION signing_key_grants_bump();

-- A key created, removed, (de)activated or given another owner or path: every agent (rare operator
-- actions; a new key at a preferred path may change which key an agent's default resolves to).
CREATE FUNCTION signing_keys_bump() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  UPDATE agents SET key_access_version = key_access_version + 1;
  RETURN NULL;
END $$;
-- Per row: an INSERT … ON CONFLICT DO UPDATE that inserts nothing (a key recorded again) bumps nothing.
CREATE TRIGGER signing_keys_added_or_removed AFTER INSERT OR DELETE ON signing_keys
  FOR EACH ROW EXECUTE FUNCTION signing_keys_bump();
CREATE TRIGGER signing_keys_changed AFTER UPDATE ON signing_keys
  FOR EACH ROW WHEN (OLD.is_active IS DISTINCT FROM NEW.is_active OR OLD.agent_id IS DISTINCT FROM NEW.agent_id OR OLD.path IS DISTINCT FROM NEW.path)
  EXECUTE FUNCTION signing_keys_bump();
