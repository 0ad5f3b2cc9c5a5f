-- The review console (`payee-stream review`): its queue, the reviewers' decisions, who may
-- sign in, and a searchable copy of the supplier index.

-- One row per record sent to review, written by the sink from payees.review. A newer review
-- result for the same record replaces the row (and reopens it); an "enriched" result for the
-- record, or a reviewer's decision, resolves it.
CREATE TABLE review_items (
    record_key      text PRIMARY KEY,
    event_id        uuid NOT NULL,
    normalized_name text NOT NULL,
    source_system   text NOT NULL,
    place           text,
    amount          numeric,
    currency        text,
    reasons         text[] NOT NULL,
    uncertainty     double precision NOT NULL,
    priority        double precision NOT NULL,
    result          jsonb NOT NULL,
    processed_at    timestamptz NOT NULL,
    queued_at       timestamptz NOT NULL DEFAULT now(),
    status          text NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'resolved')),
    resolution      text,
    decision_id     uuid,
    resolved_by     text,
    resolved_at     timestamptz
);

-- The queue: open items by priority (ties: oldest first), read by walking this index.
CREATE INDEX review_items_queue_idx ON review_items (priority DESC, queued_at, record_key)
    WHERE status = 'open';
-- Oldest open item (metrics, the age filter) and "same normalised payee" resolution.
CREATE INDEX review_items_open_age_idx ON review_items (queued_at) WHERE status = 'open';
-- The queue's counts: one index-only scan of the open items' (source, reasons, age).
CREATE INDEX review_items_facets_idx ON review_items (source_system, reasons, queued_at) WHERE status = 'open';
CREATE INDEX review_items_name_idx ON review_items (normalized_name) WHERE status = 'open';

-- Every decision ever taken, with who, when and why. The one in force per key is also on the
-- compacted decisions topic; a newer decision on its key supersedes it, an undo removes it.
CREATE TABLE review_decisions (
    decision_id           uuid PRIMARY KEY,
    decision_key          text NOT NULL,
    normalized_name       text NOT NULL,
    source_system         text,
    place                 text,
    outcome               text NOT NULL,
    supplier_id           text,
    supplier_name         text,
    excluded_supplier_ids text[] NOT NULL DEFAULT '{}',
    entity_type           text,
    subtype               text,
    reviewer              text NOT NULL,
    note                  text,
    decided_at            timestamptz NOT NULL,
    supersedes            uuid,
    from_record_key       text,
    items_resolved        integer NOT NULL DEFAULT 0,
    state                 text NOT NULL DEFAULT 'in_force' CHECK (state IN ('in_force', 'superseded', 'undone')),
    undone_by             text,
    undone_at             timestamptz,
    message               jsonb NOT NULL
);

CREATE UNIQUE INDEX review_decisions_in_force_idx ON review_decisions (decision_key) WHERE state = 'in_force';
CREATE INDEX review_decisions_decided_at_idx ON review_decisions (decided_at DESC);
CREATE INDEX review_decisions_name_idx ON review_decisions (normalized_name, decided_at DESC);

-- Who may sign in. Passwords are scrypt hashes, tokens SHA-256 digests: neither is stored.
CREATE TABLE reviewers (
    username      text PRIMARY KEY,
    display_name  text NOT NULL,
    role          text NOT NULL CHECK (role IN ('reviewer', 'read_only')),
    password_hash text,
    token_digest  text UNIQUE,
    disabled      boolean NOT NULL DEFAULT false,
    created_at    timestamptz NOT NULL DEFAULT now()
);

-- Signed-in sessions, by the SHA-256 digest of the cookie's value; each has its CSRF token.
CREATE TABLE review_sessions (
    session_digest text PRIMARY KEY,
    username       text NOT NULL REFERENCES reviewers (username) ON DELETE CASCADE,
    csrf_token     text NOT NULL,
    created_at     timestamptz NOT NULL DEFAULT now(),
    expires_at     timestamptz NOT NULL
);

CREATE INDEX review_sessions_expires_idx ON review_sessions (expires_at);

-- The supplier index as the reviewers search it, written by the sink from the suppliers topic.
-- (Not the `suppliers` table of 0004, which is a source the sync reads.)
CREATE TABLE supplier_directory (
    supplier_id text PRIMARY KEY,
    name        text NOT NULL,
    alt_name    text,
    city        text,
    state       text,
    category    text,
    search_text text GENERATED ALWAYS AS (name || coalesce(' ' || alt_name, '')) STORED,
    updated_at  timestamptz NOT NULL DEFAULT now()
);

-- Name search by trigrams where pg_trgm can be installed (it is a trusted extension); without
-- it, searches scan the table.
DO $$
DECLARE
    trgm_schema text;
BEGIN
    IF EXISTS (SELECT 1 FROM pg_available_extensions WHERE name = 'pg_trgm') THEN
        BEGIN
            CREATE EXTENSION IF NOT EXISTS pg_trgm WITH SCHEMA public;
        EXCEPTION WHEN insufficient_privilege THEN
            RAISE NOTICE 'pg_trgm not installed: supplier search scans the table';
        END;
    END IF;
    SELECT extnamespace::regnamespace::text INTO trgm_schema FROM pg_extension WHERE extname = 'pg_trgm';
    IF trgm_schema IS NOT NULL THEN
        EXECUTE format(
            'CREATE INDEX supplier_directory_search_trgm_idx ON supplier_directory USING gin (search_text %I.gin_trgm_ops)',
            trgm_schema
        );
    END IF;
END;
$$;
