-- Real-name accounts are closed as well as opened (实名制销户; docs/API.md "Master data").
--
-- A closed account stays on file: it is the record of who held the company's cylinders, and
-- DOMAIN.md's recovery rule looks for cylinders delivered to a customer whose account is
-- closed. `closed_on` is null while the account is open; clearing it reopens the account.
-- The ID number is not touched here: customers hold only its masked form and a keyed hash
-- (server/api/customers.py), never the number itself.
ALTER TABLE customers ADD COLUMN IF NOT EXISTS closed_on date;
ALTER TABLE customers
    ADD CONSTRAINT customers_closed_on_check CHECK (closed_on IS NULL OR closed_on >= opened_on);
