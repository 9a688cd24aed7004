-- Widening (binary coercible: no rewrite) and a conversion with USING.
ALTER TABLE invoices ALTER COLUMN memo TYPE varchar(500);
ALTER TABLE invoices ALTER COLUMN memo TYPE text;
ALTER TABLE invoices ALTER COLUMN amount_cents TYPE bigint USING amount_cents::bigint;
ALTER TABLE invoices ALTER CONSTRAINT invoices_account_id_fkey DEFERRABLE INITIALLY DEFERRED;
ALTER SEQUENCE invoices_id_seq RENAME TO invoices_id_seq_renamed;
