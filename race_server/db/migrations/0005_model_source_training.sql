-- Models registered by a finished training job carry source 'training'.

ALTER TABLE models DROP CONSTRAINT models_source_check;
ALTER TABLE models ADD CONSTRAINT models_source_check
    CHECK (source IN ('trackside', 'deepracer', 'clone', 'training'));
