-- The delivery log's retention sweep finds finished deliveries by their last change.
CREATE INDEX webhook_deliveries_finished ON webhook_deliveries (updated_at_ms) WHERE status IN ('delivered', 'failed');
