-- Routines written the way the mysql client reads them.
DELIMITER //
CREATE TRIGGER accounts_name_default BEFORE INSERT ON accounts
FOR EACH ROW
BEGIN
    IF NEW.display_name IS NULL THEN
        SET NEW.display_name = SUBSTRING_INDEX(NEW.email, '@', 1); -- keep the ; inside
    END IF;
END//

CREATE PROCEDURE credit_account(IN target BIGINT, IN cents BIGINT)
BEGIN
    DECLARE done INT DEFAULT 0;
    label1: LOOP
        UPDATE accounts SET balance_cents = balance_cents + cents WHERE id = target;
        SET done = done + 1;
        IF done >= 1 THEN
            LEAVE label1;
        END IF;
    END LOOP label1;
    CASE WHEN cents < 0 THEN SELECT 'debit'; ELSE SELECT 'credit'; END CASE;
END//
DELIMITER ;
