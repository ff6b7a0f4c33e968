-- The event store, in sqlite-es's shape (it inserts by column name), plus a global log position.
CREATE TABLE events
(
    aggregate_type text                          NOT NULL,
    aggregate_id   text                          NOT NULL,
    sequence       integer CHECK (sequence >= 0) NOT NULL,
    event_type     text                          NOT NULL,
    event_version  text                          NOT NULL,
    payload        text                          NOT NULL,
    metadata       text                          NOT NULL,
    -- Order of the global log that projections tail. Assigned by the trigger below; SQLite has a
    -- single writer, so assignment order is commit order and readers can never skip a gap.
    global_position integer,
    -- The primary key is what turns a concurrent append into a conflict (optimistic concurrency).
    PRIMARY KEY (aggregate_type, aggregate_id, sequence)
) STRICT;

CREATE UNIQUE INDEX events_global_position ON events (global_position);

CREATE TRIGGER events_assign_global_position
    AFTER INSERT ON events
    FOR EACH ROW
BEGIN
    UPDATE events
    SET global_position = (SELECT COALESCE(MAX(global_position), 0) + 1 FROM events)
    WHERE rowid = NEW.rowid;
END;

-- Events are never changed or removed: auditors rely on it.
CREATE TRIGGER events_are_append_only_update
    BEFORE UPDATE OF aggregate_type, aggregate_id, sequence, event_type, event_version, payload, metadata ON events
BEGIN
    SELECT RAISE(ABORT, 'events are append-only');
END;

CREATE TRIGGER events_are_append_only_delete
    BEFORE DELETE ON events
BEGIN
    SELECT RAISE(ABORT, 'events are append-only');
END;

-- Required by sqlite-es; Keyledger does not snapshot yet.
CREATE TABLE snapshots
(
    aggregate_type   text                                  NOT NULL,
    aggregate_id     text                                  NOT NULL,
    last_sequence    integer CHECK (last_sequence >= 0)    NOT NULL,
    current_snapshot integer CHECK (current_snapshot >= 0) NOT NULL,
    payload          text                                  NOT NULL,
    PRIMARY KEY (aggregate_type, aggregate_id, last_sequence)
) STRICT;

CREATE TRIGGER events_position_is_final
    BEFORE UPDATE OF global_position ON events
    WHEN OLD.global_position IS NOT NULL
BEGIN
    SELECT RAISE(ABORT, 'events are append-only');
END;
