-- Tamper-evident audit log. Writers only INSERT (inside the transaction whose effect they record).
-- A single sealer at a time (advisory lock) then links committed events into one hash chain, in the
-- order it first sees them: `chain_seq` is that order, `prev_hash` the previous event's `hash`.
-- Sealing late rather than at insert keeps a global lock out of every submit's transaction, and a
-- row that commits late (a lower `seq` than one already sealed) simply joins the chain later.
ALTER TABLE audit_events ADD COLUMN chain_seq bigint UNIQUE;
CREATE INDEX audit_events_unsealed ON audit_events (seq) WHERE chain_seq IS NULL;
CREATE INDEX audit_events_actor ON audit_events (actor_id, seq);

-- Append-only: no DELETE, and no UPDATE except the sealer's one-time filling of the chain columns.
CREATE FUNCTION audit_events_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP = 'DELETE' OR TG_OP = 'TRUNCATE' THEN
    RAISE EXCEPTION 'audit_events is append-only' USING ERRCODE = 'insufficient_privilege';
  END IF;
  IF OLD.chain_seq IS NULL AND NEW.chain_seq IS NOT NULL AND NEW.hash IS NOT NULL
     AND (NEW.id, NEW.seq, NEW.action, NEW.actor_type, NEW.actor_id, NEW.resource_type, NEW.resource_id,
          NEW.details, NEW.request_id, NEW.ip_address, NEW.created_at)
         IS NOT DISTINCT FROM
         (OLD.id, OLD.seq, OLD.action, OLD.actor_type, OLD.actor_id, OLD.resource_type, OLD.resource_id,
          OLD.details, OLD.request_id, OLD.ip_address, OLD.created_at) THEN
    RETURN NEW;
  END IF;
  RAISE EXCEPTION 'audit_events is append-only' USING ERRCODE = 'insufficient_privilege';
END $$;

CREATE TRIGGER audit_events_no_update BEFORE UPDATE OR DELETE ON audit_events
  FOR EACH ROW EXECUTE FUNCTION audit_events_append_only();
CREATE TRIGGER audit_events_no_truncate BEFORE TRUNCATE ON audit_events
  FOR EACH STATEMENT EXECUTE FUNCTION audit_events_append_only();
