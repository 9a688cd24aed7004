-- expect: pass
-- source: rule list: renames allowed in a contract file
-- differ: squawk has no contract marker: it flags every rename, so a team must disable the rule or ignore CI when the destructive step is intended
-- shipgate:contract
ALTER TABLE distributors RENAME COLUMN address TO city;
