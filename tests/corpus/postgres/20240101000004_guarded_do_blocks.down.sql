DROP TABLE IF EXISTS audit_events;
DROP TYPE IF EXISTS plan_tier;
