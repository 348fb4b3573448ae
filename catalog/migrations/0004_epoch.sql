-- The catalog's change counter: one row (id = 1).
--
-- Servers keep the policy (principals, tokens, grants, datasets and their
-- standards) in memory and read this counter on every request; each change
-- to any of those moves it, in the same transaction as the change, so a
-- server that sees the old value also sees the old state and one that sees
-- the new value reloads (`catalog/src/store/snapshot.rs`).
CREATE TABLE catalog_epoch (
    id    BIGINT NOT NULL PRIMARY KEY CHECK (id = 1),
    epoch BIGINT NOT NULL
);
INSERT INTO catalog_epoch (id, epoch) VALUES (1, 0);
