-- Query-only indexes of a read model loaded in bulk (a rebuild, a new node's first catch-up),
-- dropped while it loads and built again when it reaches the log's head; their definitions wait
-- here meanwhile (projections/src/runner/deferred.rs).
CREATE TABLE deferred_indexes
(
    name       TEXT PRIMARY KEY,
    model      TEXT NOT NULL,
    definition TEXT NOT NULL
);
