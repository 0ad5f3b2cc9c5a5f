-- Schema version 2 of the events (README, "Topics and events"): event ids come from the source
-- position, so one record redelivered with a different outcome (a supplier upsert between a crash
-- and the redelivery, a repaired LLM result) keeps its event id and carries a new result_version.
-- The newest result per record is the one with the highest order_key (its offset on payees.raw),
-- not the latest processing time.

-- One audit event per record lists every decision; the sink still stores one row per decision,
-- under an id derived from the audit event, its result version and the decision's position.
ALTER TABLE audit_events
    ADD COLUMN audit_event_id uuid,
    ADD COLUMN decision_index integer NOT NULL DEFAULT 0,
    ADD COLUMN order_key bigint;
CREATE INDEX audit_events_audit_event_id_idx ON audit_events (audit_event_id);

ALTER TABLE payee_result_events
    ADD COLUMN result_version text NOT NULL DEFAULT '',
    ADD COLUMN order_key bigint NOT NULL DEFAULT -1;
ALTER TABLE payee_result_events DROP CONSTRAINT payee_result_events_pkey;
ALTER TABLE payee_result_events ADD PRIMARY KEY (event_id, result_version);

ALTER TABLE payee_results
    ADD COLUMN result_version text NOT NULL DEFAULT '',
    ADD COLUMN order_key bigint NOT NULL DEFAULT -1;

-- The review queue keeps each record's newest review result by the same order: a redelivered or
-- older result never replaces (or reopens) a newer item, whatever its processing time.
ALTER TABLE review_items
    ADD COLUMN result_version text NOT NULL DEFAULT '',
    ADD COLUMN order_key bigint NOT NULL DEFAULT -1;
