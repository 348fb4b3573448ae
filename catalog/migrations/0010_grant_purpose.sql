-- A grant may require its grantees to state a purpose (`x-civlink-purpose`)
-- on every request that reads the dataset: without one the request is
-- refused, saying why (catalog::policy::access::purpose_required).
--
-- Portable SQL, same conventions as 0001_catalog.sql (booleans are BIGINT 0/1).
ALTER TABLE grants ADD COLUMN purpose_required BIGINT NOT NULL DEFAULT 0 CHECK (purpose_required IN (0, 1));
