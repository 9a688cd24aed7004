-- expect: pass
-- source: rule list: a table created and dropped in one run harms nobody
-- differ: the table was created in the same file: nobody else can use it; squawk does not track what the file created
CREATE TABLE scratch (id integer);
DROP TABLE scratch;
