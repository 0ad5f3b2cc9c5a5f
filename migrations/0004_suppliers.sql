-- Source table for `payee-stream suppliers sync`: the supplier master, maintained by its owner.
--
-- Contract (the sync publishes rows changed since its last run, by updated_at then supplier_id):
--   * supplier_id is the key on the suppliers topic; name is required, the other text columns
--     are optional (NULL or '');
--   * every insert and update must move updated_at forward. The trigger below does it, so
--     writers need not; a table of your own needs the same guarantee;
--   * never DELETE a row: set deleted = true, and the sync publishes a tombstone for it.
--   * a change committed by a transaction that was already open when a sync ran can carry an
--     updated_at below that sync's watermark and be missed; `suppliers sync --full` republishes all.
CREATE TABLE suppliers (
    supplier_id text PRIMARY KEY,
    name        text NOT NULL,
    alt_name    text,
    address     text,
    city        text,
    state       text,
    postal_code text,
    country     text,
    category    text,
    code        text,
    updated_at  timestamptz NOT NULL DEFAULT clock_timestamp(),
    deleted     boolean NOT NULL DEFAULT false
);

CREATE INDEX suppliers_sync_order_idx ON suppliers (updated_at, supplier_id);

-- clock_timestamp(), not now(): rows changed late in a long transaction get a later time,
-- which narrows the window described above.
CREATE FUNCTION suppliers_touch_updated_at() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    NEW.updated_at := clock_timestamp();
    RETURN NEW;
END;
$$;

CREATE TRIGGER suppliers_touch_updated_at
    BEFORE INSERT OR UPDATE ON suppliers
    FOR EACH ROW EXECUTE FUNCTION suppliers_touch_updated_at();

-- How far each suppliers topic has been synced: the last (updated_at, supplier_id) published.
CREATE TABLE supplier_sync_state (
    topic            text PRIMARY KEY,
    last_updated_at  timestamptz NOT NULL,
    last_supplier_id text NOT NULL,
    synced_at        timestamptz NOT NULL DEFAULT now()
);
