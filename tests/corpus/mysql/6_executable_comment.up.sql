/*!40101 SET @saved_sql_mode = @@sql_mode */;
/*!50003 CREATE TABLE dumped (id INT PRIMARY KEY) */;
/*!40101 SET sql_mode = @saved_sql_mode */;
