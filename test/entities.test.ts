import { describe, expect, it } from 'vitest';
import { User, UserPreferences } from '../src/entities/index.ts';
import { countRows, sql } from './support/database.ts';
import { useTestDatabase } from './support/hooks.ts';

const db = useTestDatabase();

describe('entities', () => {
  it('round-trips a user and its JSONB preferences, with database defaults', async () => {
    const em = db.em.fork();
    const user = em.create(User, { clerkUserId: 'user_roundtrip', email: 'round@example.com' });
    em.create(UserPreferences, {
      user,
      customHours: { start: '08:30', end: '16:30', timezone: 'Europe/Berlin' },
      communicationPreferences: { email: false, sms: true, in_app: true },
    });
    await em.flush();

    const loaded = await db.em
      .fork()
      .findOneOrFail(User, { clerkUserId: 'user_roundtrip' }, { populate: ['preferences'] });
    expect(loaded.id).toMatch(/^[0-9a-f-]{36}$/);
    expect(loaded.timezone).toBe('UTC');
    expect(loaded.createdAt).toBeInstanceOf(Date);
    expect(loaded.preferences?.theme).toBe('modern');
    expect(loaded.preferences?.onboardingCompleted).toBe(false);
    expect(loaded.preferences?.customHours).toEqual({
      start: '08:30',
      end: '16:30',
      timezone: 'Europe/Berlin',
    });
    expect(loaded.preferences?.communicationPreferences).toEqual({
      email: false,
      sms: true,
      in_app: true,
    });
    expect(loaded.preferences?.user).toBe(loaded);
  });

  it('bumps updated_at on every update through the unit of work', async () => {
    const em = db.em.fork();
    const user = em.create(User, { clerkUserId: 'user_bump', email: 'bump@example.com' });
    await em.flush();
    const updatedAt = async () => {
      const [row] = await sql<{ updated_at: string; timezone: string }>(
        db,
        'select updated_at::text, timezone from users where id = ?',
        [user.id],
      );
      return { timezone: row?.timezone, at: new Date(row?.updated_at ?? 0).getTime() };
    };
    const before = await updatedAt();
    await new Promise((resolve) => setTimeout(resolve, 20));
    user.timezone = 'Asia/Tokyo';
    await em.flush();
    const after = await updatedAt();
    expect(after.timezone).toBe('Asia/Tokyo');
    expect(after.at).toBeGreaterThan(before.at);
  });

  it('allows one preferences row per user', async () => {
    const em = db.em.fork();
    const user = em.create(User, { clerkUserId: 'user_once', email: 'once@example.com' });
    em.create(UserPreferences, { user });
    await em.flush();
    await expect(
      sql(db, 'insert into user_preferences (user_id) values (?)', [user.id]),
    ).rejects.toThrow(/user_preferences_user_id_unique/);
    expect(await countRows(db, 'user_preferences', 'user_id = ?', [user.id])).toBe(1);
  });

  it('deletes the preferences with their user (ON DELETE CASCADE)', async () => {
    const em = db.em.fork();
    const user = em.create(User, { clerkUserId: 'user_cascade', email: 'cascade@example.com' });
    em.create(UserPreferences, { user });
    await em.flush();
    await sql(db, 'delete from users where id = ?', [user.id]);
    expect(await countRows(db, 'user_preferences', 'user_id = ?', [user.id])).toBe(0);
  });
});
