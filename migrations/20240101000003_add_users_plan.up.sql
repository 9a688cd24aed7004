-- Every user is on a plan; existing users start on the free one.
-- shipgate:allow constraint-not-valid users is created in this same first release and is empty; SQLite cannot add a NOT VALID constraint
ALTER TABLE users ADD COLUMN plan_code VARCHAR(40) NOT NULL DEFAULT 'free' REFERENCES plans (code);
