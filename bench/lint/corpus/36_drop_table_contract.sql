-- expect: pass
-- source: rule list: drops allowed in a contract file
-- differ: as above: shipgate releases drops marked `-- shipgate:contract`, and holds them back at deploy time until --allow-contract
-- shipgate:contract
DROP TABLE films, distributors;
