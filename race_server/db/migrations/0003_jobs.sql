-- Training and evaluation jobs, claimed by worker supervisors with FOR UPDATE SKIP LOCKED, and
-- their event log (status changes and per-iteration progress) so a reloaded page can redraw the
-- reward graph and a reconnecting client can replay from its last event id.

CREATE TABLE jobs (
    id             bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    owner_id       bigint NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    kind           text NOT NULL CHECK (kind IN ('training', 'evaluation')),
    status         text NOT NULL DEFAULT 'queued' CHECK (
        status IN ('queued', 'initializing', 'in_progress', 'stopping', 'completed', 'failed', 'canceled')
    ),
    name           text NOT NULL CHECK (name ~ '^[a-zA-Z0-9-]+$' AND length(name) < 64),
    config         jsonb NOT NULL,
    -- the training job whose model is evaluated, or cloned from
    source_job_id  bigint REFERENCES jobs (id) ON DELETE SET NULL,
    model_dir      text,
    model_id       bigint REFERENCES models (id) ON DELETE SET NULL,
    worker_id      text,
    worker_host    text,
    worker_pid     integer,
    child_pid      integer,
    heartbeat_at   timestamptz,
    attempts       integer NOT NULL DEFAULT 0,
    stop_requested boolean NOT NULL DEFAULT false,
    stopped_early  boolean NOT NULL DEFAULT false,
    error          text,
    progress       jsonb NOT NULL DEFAULT '{}',
    result         jsonb,
    created_at     timestamptz NOT NULL DEFAULT now(),
    started_at     timestamptz,
    finished_at    timestamptz,
    CHECK ((status IN ('completed', 'failed', 'canceled')) = (finished_at IS NOT NULL))
);
CREATE INDEX jobs_queued_idx ON jobs (id) WHERE status = 'queued';
CREATE INDEX jobs_active_idx ON jobs (worker_id) WHERE status IN ('initializing', 'in_progress', 'stopping');
CREATE INDEX jobs_owner_idx ON jobs (owner_id, id DESC);

CREATE TABLE job_events (
    id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    job_id     bigint NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
    type       text NOT NULL CHECK (type IN ('job.status', 'job.progress')),
    data       jsonb NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX job_events_job_idx ON job_events (job_id, id);
