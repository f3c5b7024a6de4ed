-- Model store: one row per model a user owns, and the files of its virtual DeepRacer folder,
-- each pointing at a content-addressed blob in <data_dir>/blobs.

CREATE TABLE models (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    owner_id        bigint NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    name            text NOT NULL CHECK (name ~ '^[a-zA-Z0-9-]+$' AND length(name) < 64),
    description     text NOT NULL DEFAULT '' CHECK (length(description) <= 2000),
    status          text NOT NULL CHECK (status IN ('importing', 'ready', 'error', 'deleting')),
    source          text NOT NULL CHECK (source IN ('trackside', 'deepracer', 'clone')),
    weights         text NOT NULL CHECK (weights IN ('ready', 'needs_conversion')),
    metadata        jsonb NOT NULL,
    hyperparameters jsonb,
    training_params jsonb,
    checkpoints     jsonb NOT NULL,
    warnings        jsonb NOT NULL DEFAULT '[]',
    size_bytes      bigint NOT NULL CHECK (size_bytes >= 0),
    checksum        text NOT NULL,
    parent_id       bigint REFERENCES models (id) ON DELETE SET NULL,
    created_at      timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX models_owner_name_key ON models (owner_id, lower(name));

CREATE TABLE model_files (
    model_id   bigint NOT NULL REFERENCES models (id) ON DELETE CASCADE,
    path       text NOT NULL CHECK (path !~ '(^/|(^|/)\.\.(/|$))'),
    sha256     text NOT NULL CHECK (sha256 ~ '^[0-9a-f]{64}$'),
    size_bytes bigint NOT NULL CHECK (size_bytes >= 0),
    PRIMARY KEY (model_id, path)
);
CREATE INDEX model_files_blob_idx ON model_files (sha256);
