-- Batches: a model compiled with `--batch N` and a usable slot layout has N slots, and one lease
-- covers up to N requests of one model and one client, each in its own slot (the others are
-- padding). An attempt stays one row per request and lease, so "at most one accepted proof per
-- request" keeps its index; the rows of one lease share its lease_id, token, proof and outcome.
ALTER TABLE models ADD COLUMN slots integer NOT NULL DEFAULT 1 CHECK (slots >= 1);

ALTER TABLE attempts DROP CONSTRAINT attempts_pkey;
ALTER TABLE attempts ADD PRIMARY KEY (lease_id, inference_id);
ALTER TABLE attempts
    ADD COLUMN slot integer NOT NULL DEFAULT 0,
    ADD COLUMN batch_size integer NOT NULL DEFAULT 1,
    ADD COLUMN padding integer[] NOT NULL DEFAULT '{}';
-- One lease, one request per slot.
CREATE UNIQUE INDEX attempts_one_request_per_slot ON attempts (lease_id, slot);
-- A batch proof is accepted once for each of its requests: a copied proof is still refused,
-- since every batch has a request in slot 0.
DROP INDEX attempts_one_accepted_per_proof;
CREATE UNIQUE INDEX attempts_one_accepted_per_proof ON attempts (model_id, proof_sha256, slot)
    WHERE outcome = 'accepted';

-- Where the accepted proof put the request: its slot, the batch's size and its padding slots.
ALTER TABLE inferences
    ADD COLUMN slot integer,
    ADD COLUMN batch_size integer,
    ADD COLUMN padding integer[];
CREATE INDEX inferences_batch_queue ON inferences (model_id, owner, created_at, id)
    WHERE status = 'queued';
