DROP DOMAIN email;
DROP TYPE money_amount;
DROP TYPE account_status;
