-- Bounded reads of the queue, however long it is. A claim looks only at the oldest queued
-- requests (a window of fixed size): of any model (inferences_queue, in created_at order) or,
-- for a provider that names its models, of each of them (this index, in created_at order within
-- a model); whether a batch is full reads at most its size of inferences_batch_queue.
CREATE INDEX inferences_model_queue ON inferences (model_id, created_at, id)
    WHERE status = 'queued';
-- A create counts its client's queued requests (at most ZKINFER_MAX_QUEUED_PER_CLIENT of them).
CREATE INDEX inferences_owner_queue ON inferences (owner) WHERE status = 'queued';
-- The reaper (which every claim runs first) finds the requests past their deadline without reading
-- the whole queue.
CREATE INDEX inferences_deadline ON inferences (deadline)
    WHERE status IN ('queued', 'proving', 'verifying');
