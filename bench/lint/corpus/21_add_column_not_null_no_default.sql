-- expect: flag
-- source: rule list
ALTER TABLE distributors ADD COLUMN region text NOT NULL;
