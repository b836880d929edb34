-- A temporary password (a manager's reset, issue 11) stops working at this time unless it was replaced first.
ALTER TABLE account ADD COLUMN temporary_password_until BIGINT;
