-- Failed logins remember the browser they came from: a browser that signed in as the account before
-- (a signed device cookie) has a budget of its own, so strangers' failures cannot lock the owner out.
ALTER TABLE login_failures ADD COLUMN device text;
CREATE INDEX login_failures_device_idx ON login_failures (device, failed_at) WHERE device IS NOT NULL;
