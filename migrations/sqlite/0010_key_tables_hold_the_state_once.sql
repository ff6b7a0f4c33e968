-- A key's row in the key list and in the key lookup carries the key's folded state, which every
-- query and the edge's snapshot read. The columns copied out of it (name, scopes, limits, IP
-- rules, dates) were read by nothing and were about a quarter of each row a rebuild writes.
-- What stays beside the state is what a query filters, orders or joins on.
ALTER TABLE api_keys DROP COLUMN name;
ALTER TABLE api_keys DROP COLUMN environment;
ALTER TABLE api_keys DROP COLUMN prefix;
ALTER TABLE api_keys DROP COLUMN scopes;
ALTER TABLE api_keys DROP COLUMN rate_limits;
ALTER TABLE api_keys DROP COLUMN ip_allow;
ALTER TABLE api_keys DROP COLUMN ip_block;
ALTER TABLE api_keys DROP COLUMN created_at_ms;
ALTER TABLE api_keys DROP COLUMN updated_at_ms;
ALTER TABLE api_keys DROP COLUMN revoked_at_ms;
ALTER TABLE key_lookup DROP COLUMN tenant;
ALTER TABLE key_lookup DROP COLUMN environment;
ALTER TABLE key_lookup DROP COLUMN status;
ALTER TABLE key_lookup DROP COLUMN scopes;
ALTER TABLE key_lookup DROP COLUMN rate_limits;
ALTER TABLE key_lookup DROP COLUMN ip_allow;
ALTER TABLE key_lookup DROP COLUMN ip_block;
ALTER TABLE key_lookup DROP COLUMN expires_at_ms;
