-- The usage log is written tens of thousands of rows a second and read in order of `id` (rollups
-- tail it like the event log; each key's last use lives in key_usage). Its two secondary indexes
-- were maintained on every row and read by nothing: each cost the edge CPU on every request.
DROP INDEX IF EXISTS usage_log_at;
DROP INDEX IF EXISTS usage_log_key;
