-- A standard version can be deprecated (with a reason): datasets bound to it
-- keep reading, and publishers and readers are told (catalog::store::standards).
--
-- Portable SQL, same conventions as 0001_catalog.sql (timestamps are RFC 3339 TEXT).
ALTER TABLE standards ADD COLUMN deprecated_at TEXT;
ALTER TABLE standards ADD COLUMN deprecation_reason TEXT;
