-- The SHA-256 of an attempt's canonical proof bytes: a proof already accepted once for a model is
-- a copy when submitted again (halo2 proofs carry fresh blinding), so at most one accepted attempt
-- per model and digest.
ALTER TABLE attempts ADD COLUMN model_id text, ADD COLUMN proof_sha256 text;
CREATE UNIQUE INDEX attempts_one_accepted_per_proof ON attempts (model_id, proof_sha256)
    WHERE outcome = 'accepted';
