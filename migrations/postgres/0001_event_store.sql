-- The event store, in postgres-es's shape (it inserts by column name), plus a global log position.
CREATE TABLE events
(
    aggregate_type text                         NOT NULL,
    aggregate_id   text                         NOT NULL,
    sequence       bigint CHECK (sequence >= 0) NOT NULL,
    event_type     text                         NOT NULL,
    event_version  text                         NOT NULL,
    payload        json                         NOT NULL,
    metadata       json                         NOT NULL,
    -- Order of the global log that projections tail; assigned by the trigger below.
    global_position bigint,
    -- The primary key is what turns a concurrent append into a conflict (optimistic concurrency).
    PRIMARY KEY (aggregate_type, aggregate_id, sequence)
);

CREATE UNIQUE INDEX events_global_position ON events (global_position);

CREATE SEQUENCE events_global_position_seq;

-- Positions from a plain sequence can become visible out of order (transaction B takes 11 and
-- commits before A, holding 10, commits), and a reader past 11 would skip 10 forever. Appends
-- therefore take one transaction-level advisory lock before drawing a position: positions are
-- drawn in commit order across every node sharing this database, so a reader that sees position
-- N has already seen every committed position below N. Rolled-back appends leave harmless holes.
CREATE FUNCTION events_assign_global_position() RETURNS trigger
    LANGUAGE plpgsql AS
$$
BEGIN
    PERFORM pg_advisory_xact_lock(7220230001);
    NEW.global_position := nextval('events_global_position_seq');
    -- Delivered at commit: wakes projection workers and edge caches on every node at once.
    PERFORM pg_notify('keyledger_events', NEW.global_position::text);
    RETURN NEW;
END;
$$;

CREATE TRIGGER events_assign_global_position
    BEFORE INSERT ON events
    FOR EACH ROW
EXECUTE FUNCTION events_assign_global_position();

-- Events are never changed or removed: auditors rely on it.
CREATE FUNCTION events_are_append_only() RETURNS trigger
    LANGUAGE plpgsql AS
$$
BEGIN
    RAISE EXCEPTION 'events are append-only';
END;
$$;

CREATE TRIGGER events_are_append_only
    BEFORE UPDATE OR DELETE ON events
    FOR EACH ROW
EXECUTE FUNCTION events_are_append_only();

-- Required by postgres-es; Keyledger does not snapshot yet.
CREATE TABLE snapshots
(
    aggregate_type   text                                 NOT NULL,
    aggregate_id     text                                 NOT NULL,
    last_sequence    bigint CHECK (last_sequence >= 0)    NOT NULL,
    current_snapshot bigint CHECK (current_snapshot >= 0) NOT NULL,
    payload          json                                 NOT NULL,
    PRIMARY KEY (aggregate_type, aggregate_id, last_sequence)
);
