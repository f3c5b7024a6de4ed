-- Fleet: what each car told us when it last linked, its tail-light colour, when it was last seen,
-- and the race it is assigned to (a race with an assigned car is raced on the physical track).

ALTER TABLE cars
    ADD COLUMN tail_light   text NOT NULL DEFAULT '#0050ff' CHECK (tail_light ~ '^#[0-9a-f]{6}$'),
    ADD COLUMN hardware     text,
    ADD COLUMN software     text,
    ADD COLUMN last_seen_at timestamptz,
    ADD COLUMN race_id      bigint REFERENCES races (id) ON DELETE SET NULL;

-- One car per race: the car on track is the one the organizer assigned.
CREATE UNIQUE INDEX cars_race_key ON cars (race_id) WHERE race_id IS NOT NULL;
