-- expect: pass
-- source: PG docs INSERT examples
INSERT INTO films VALUES ('UA502', 'Bananas', 105, '1971-07-13', 'Comedy', '82 minutes');
