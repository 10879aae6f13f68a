-- One Clerk user.created per transaction, written the way the worker writes it: the per-user
-- advisory lock, the user (a newer Clerk updated_at wins), its default preferences unless it
-- has some. The worker's two reads (tombstone, stored row) are folded into ON CONFLICT here,
-- which makes this the faster of the two. Every transaction is a new user (random id).
\set n random(1, 1000000000000)
BEGIN;
SELECT pg_advisory_xact_lock(hashtextextended('user_bench_:n', 0));
INSERT INTO users (clerk_user_id, email, timezone, clerk_updated_at)
  VALUES ('user_bench_:n', 'user_bench_:n@example.com', 'UTC', now())
  ON CONFLICT (clerk_user_id) DO UPDATE
    SET email = excluded.email, timezone = excluded.timezone,
        clerk_updated_at = excluded.clerk_updated_at, updated_at = now()
    WHERE users.clerk_updated_at IS NULL OR users.clerk_updated_at < excluded.clerk_updated_at;
INSERT INTO user_preferences (user_id, custom_hours, theme, communication_preferences, onboarding_completed)
  SELECT id, '{"start": "09:00", "end": "17:00", "timezone": "UTC"}', 'modern',
         '{"email": true, "sms": false, "in_app": true}', false
    FROM users WHERE clerk_user_id = 'user_bench_:n'
  ON CONFLICT (user_id) DO NOTHING;
END;
