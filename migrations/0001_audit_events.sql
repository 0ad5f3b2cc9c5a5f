-- Every audit event exactly once. Event ids are deterministic, so a redelivered or replayed
-- event conflicts on the primary key and is skipped by the sink (ON CONFLICT DO NOTHING).
CREATE TABLE audit_events (
    event_id        uuid PRIMARY KEY,
    correlation_id  text NOT NULL,
    record_key      text,
    action          text NOT NULL,
    stage           text NOT NULL,
    outcome         jsonb NOT NULL DEFAULT '{}',
    versions        jsonb NOT NULL,
    timings_ms      jsonb NOT NULL DEFAULT '{}',
    result_event_id uuid,
    replay_run_id   text,
    occurred_at     timestamptz NOT NULL,
    written_at      timestamptz NOT NULL DEFAULT now()
);

-- `payee-stream audit show` looks a record up by any of these.
CREATE INDEX audit_events_correlation_id_idx ON audit_events (correlation_id);
CREATE INDEX audit_events_record_key_idx ON audit_events (record_key);
CREATE INDEX audit_events_result_event_id_idx ON audit_events (result_event_id);
