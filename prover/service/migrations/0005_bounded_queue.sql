-- Bounded reads of the queue, however long it is. A claim looks only at the oldest queued
-- requests (a window of fixed size): of any model (inferences_queue, in created_at order) or,
-- for a provider that names its models, of each of them (this index, in created_at order within
-- a model); whether a batch is full reads at most its size of inferences_batch_queue.
-- IF NOT EXISTS: an operator may build these indexes beforehand with CREATE INDEX CONCURRENTLY
-- (same names and definitions) so that migrating a large table takes no long lock.
CREATE INDEX IF NOT EXISTS inferences_model_queue ON inferences (model_id, created_at, id)
    WHERE status = 'queued';
-- A create counts its client's open requests whose deadline has not passed (at most
-- ZKINFER_MAX_QUEUED_PER_CLIENT of them).
CREATE INDEX IF NOT EXISTS inferences_owner_open ON inferences (owner, deadline)
    WHERE status IN ('queued', 'proving', 'verifying');
-- The reaper (which every claim runs first) finds the requests past their deadline without reading
-- the whole queue.
CREATE INDEX IF NOT EXISTS inferences_deadline ON inferences (deadline)
    WHERE status IN ('queued', 'proving', 'verifying');
