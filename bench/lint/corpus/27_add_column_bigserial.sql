-- expect: flag
-- source: rule list: per-row value from a sequence
-- differ: bigserial adds a nextval() default that fills every existing row (a table rewrite); squawk only suggests identity columns as style
ALTER TABLE users ADD COLUMN seq bigserial;
