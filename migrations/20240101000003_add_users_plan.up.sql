-- Every user is on a plan; existing users start on the free one.
ALTER TABLE users ADD COLUMN plan_code VARCHAR(40) NOT NULL DEFAULT 'free' REFERENCES plans (code);
