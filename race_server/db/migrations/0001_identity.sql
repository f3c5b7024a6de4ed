-- Identity: organizers and racers, their sessions, API tokens (CLI, cars, viewers), cars,
-- sign-up invitations, failed-login records and the organizer's server-wide choices.

CREATE TABLE users (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    role          text NOT NULL CHECK (role IN ('organizer', 'racer')),
    email         text NOT NULL,
    alias         text,
    password_hash text NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now(),
    CHECK (alias IS NULL OR alias ~ '^[A-Za-z0-9_-]{3,32}$')
);
CREATE UNIQUE INDEX users_email_key ON users (lower(email));
CREATE UNIQUE INDEX users_alias_key ON users (lower(alias));

-- A racer's alias is how the leaderboard and the broadcast know them: once chosen it stays.
CREATE FUNCTION users_alias_is_fixed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF OLD.alias IS NOT NULL AND NEW.alias IS DISTINCT FROM OLD.alias THEN
        RAISE EXCEPTION 'alias % is fixed once chosen', OLD.alias USING ERRCODE = 'check_violation';
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER users_alias_fixed BEFORE UPDATE OF alias ON users
    FOR EACH ROW EXECUTE FUNCTION users_alias_is_fixed();

CREATE TABLE sessions (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    user_id     bigint NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    token_hash  bytea NOT NULL UNIQUE,
    created_at  timestamptz NOT NULL DEFAULT now(),
    expires_at  timestamptz NOT NULL
);
CREATE INDEX sessions_user_idx ON sessions (user_id);

CREATE TABLE cars (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    owner_id    bigint NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    name        text NOT NULL CHECK (name ~ '^[A-Za-z0-9 _.-]{1,64}$'),
    created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX cars_owner_name_key ON cars (owner_id, lower(name));

CREATE TABLE api_tokens (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    kind         text NOT NULL CHECK (kind IN ('user', 'car', 'viewer')),
    user_id      bigint REFERENCES users (id) ON DELETE CASCADE,
    car_id       bigint REFERENCES cars (id) ON DELETE CASCADE,
    created_by   bigint NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    name         text NOT NULL,
    token_hash   bytea NOT NULL UNIQUE,
    created_at   timestamptz NOT NULL DEFAULT now(),
    last_used_at timestamptz,
    revoked_at   timestamptz,
    CHECK ((kind = 'user') = (user_id IS NOT NULL)),
    CHECK ((kind = 'car') = (car_id IS NOT NULL))
);
CREATE INDEX api_tokens_creator_idx ON api_tokens (created_by);

CREATE TABLE invitations (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    code_hash   bytea NOT NULL UNIQUE,
    created_by  bigint NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    max_uses    integer NOT NULL CHECK (max_uses > 0),
    uses        integer NOT NULL DEFAULT 0 CHECK (uses <= max_uses),
    created_at  timestamptz NOT NULL DEFAULT now(),
    expires_at  timestamptz NOT NULL,
    revoked_at  timestamptz
);

CREATE TABLE login_failures (
    id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    email      text NOT NULL,
    client_ip  text NOT NULL,
    failed_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX login_failures_email_idx ON login_failures (lower(email), failed_at);
CREATE INDEX login_failures_ip_idx ON login_failures (client_ip, failed_at);

CREATE TABLE server_config (
    key    text PRIMARY KEY,
    value  jsonb NOT NULL
);
INSERT INTO server_config (key, value) VALUES ('racer_signup', '"invitation"');
