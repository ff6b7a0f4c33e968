-- How far each node's usage spool is stored: the position (segment << 32 | offset) after the
-- last record the usage log holds, written in the same transaction as the batch. A node that
-- restarts, after a crash too, stores its spool from here: each record once.
CREATE TABLE usage_spool_checkpoints
(
    spool    TEXT   NOT NULL PRIMARY KEY,
    position BIGINT NOT NULL
);
