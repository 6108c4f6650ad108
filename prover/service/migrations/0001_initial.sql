-- The service's tables. Requests, their leases (one row per attempt), providers and models.
CREATE TABLE models (
    id            text PRIMARY KEY,
    status        text NOT NULL CHECK (status IN ('compiling', 'ready', 'failed')),
    reason        text,
    bundle_dir    text,
    bundle_digest text,
    manifest      jsonb,
    owner         text,
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE inferences (
    id               text PRIMARY KEY,
    owner            text NOT NULL,
    model_id         text NOT NULL REFERENCES models (id),
    bundle_digest    text NOT NULL,
    input            jsonb NOT NULL,
    status           text NOT NULL CHECK (status IN
                     ('queued', 'proving', 'verifying', 'done', 'failed', 'canceled', 'expired')),
    attempts         integer NOT NULL DEFAULT 0,
    reason           text,
    deadline         timestamptz NOT NULL,
    webhook_url      text,
    idempotency_key  text,
    request_hash     text NOT NULL,
    lease_id         text,
    lease_token_hash text,
    lease_provider   text,
    lease_expires_at timestamptz,
    outputs          jsonb,
    proof            jsonb,
    calldata         text,
    provider         text,
    accepted_lease   text,
    prove_s          double precision,
    created_at       timestamptz NOT NULL DEFAULT now(),
    first_claimed_at timestamptz,
    finished_at      timestamptz,
    updated_at       timestamptz NOT NULL DEFAULT now(),
    UNIQUE (owner, idempotency_key)
);
CREATE INDEX inferences_queue ON inferences (created_at) WHERE status = 'queued';
CREATE INDEX inferences_leased ON inferences (lease_expires_at) WHERE status = 'proving';
CREATE INDEX inferences_owner ON inferences (owner, created_at, id);

CREATE TABLE attempts (
    lease_id     text PRIMARY KEY,
    inference_id text NOT NULL REFERENCES inferences (id),
    provider     text NOT NULL,
    worker       text NOT NULL DEFAULT '',
    attempt      integer NOT NULL,
    claimed_at   timestamptz NOT NULL,
    submitted_at timestamptz,
    closed_at    timestamptz,
    -- NULL while open; submitted (awaiting verdict), accepted, rejected, failed, expired, canceled
    outcome      text,
    reason       text,
    proof        jsonb,
    prove_s      double precision
);
CREATE INDEX attempts_by_inference ON attempts (inference_id);
-- At most one accepted proof per request, whatever the code above it does.
CREATE UNIQUE INDEX attempts_one_accepted ON attempts (inference_id) WHERE outcome = 'accepted';

CREATE TABLE providers (
    id             text PRIMARY KEY,
    accepted       integer NOT NULL DEFAULT 0,
    rejected       integer NOT NULL DEFAULT 0,
    failures       integer NOT NULL DEFAULT 0,
    quarantined_at timestamptz,
    last_seen_at   timestamptz
);
