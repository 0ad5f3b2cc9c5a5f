-- Every distinct result event, for history: one row per event id.
CREATE TABLE payee_result_events (
    event_id       uuid PRIMARY KEY,
    record_key     text NOT NULL,
    correlation_id text NOT NULL,
    status         text NOT NULL,
    replay_run_id  text,
    result         jsonb NOT NULL,
    processed_at   timestamptz NOT NULL,
    written_at     timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX payee_result_events_record_key_idx ON payee_result_events (record_key, processed_at);

-- The latest result per record. The sink replaces a row only with a result processed at the
-- same time or later, so a late redelivery of an older result never wins.
CREATE TABLE payee_results (
    record_key   text PRIMARY KEY,
    event_id     uuid NOT NULL,
    status       text NOT NULL,
    entity_type  text NOT NULL,
    subtype      text,
    sic_code     text,
    confidence   double precision NOT NULL,
    method       text NOT NULL,
    supplier_id  text,
    match_score  double precision NOT NULL,
    match_type   text NOT NULL,
    versions     jsonb NOT NULL,
    result       jsonb NOT NULL,
    processed_at timestamptz NOT NULL,
    updated_at   timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX payee_results_supplier_id_idx ON payee_results (supplier_id);
