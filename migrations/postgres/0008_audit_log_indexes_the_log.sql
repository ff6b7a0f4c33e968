-- The audit log is an index of the event log by tenant, actor and action: what an entry shows
-- beyond those (the aggregate, the request id, the redacted payload) is read from its event,
-- which is never changed or removed. Copying it into every entry made the audit log the largest
-- write of a rebuild.
ALTER TABLE audit_log DROP COLUMN aggregate_type;
ALTER TABLE audit_log DROP COLUMN aggregate_id;
ALTER TABLE audit_log DROP COLUMN request_id;
ALTER TABLE audit_log DROP COLUMN details;
