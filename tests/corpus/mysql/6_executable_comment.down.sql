DROP TABLE dumped;
