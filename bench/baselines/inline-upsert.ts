/**
 * Baseline (b), Clerk's documented pattern: verify, then write the user and its default
 * preferences inside the request, in one transaction, and answer 200 after the commit. A plain
 * upsert, without the worker's advisory lock and tombstone check: the fastest honest version.
 */
import { defaultPreferences, User, UserPreferences } from '../../src/entities/index.ts';
import { initORM } from '../../src/orm.ts';
import { chooseEmail, chooseTimezone, clerkUserSchema } from '../../src/users/clerk-user.ts';
import { serveVerifiedWebhooks } from './server.ts';

const { em } = await initORM(process.env.DATABASE_URL ?? '');

serveVerifiedWebhooks(async (body) => {
  const event = JSON.parse(body.toString('utf8'));
  if (event.type !== 'user.created' && event.type !== 'user.updated') return;
  const user = clerkUserSchema.parse(event.data);
  const timezone = chooseTimezone(user);
  await em.fork().transactional(async (tx) => {
    const row = await tx.upsert(
      User,
      {
        clerkUserId: user.id,
        email: chooseEmail(user) ?? '',
        timezone,
        clerkUpdatedAt: user.updated_at ? new Date(user.updated_at) : null,
      },
      { onConflictFields: ['clerkUserId'] },
    );
    // A query builder insert: em.upsert with 'ignore' would read the row back afterwards.
    await tx
      .createQueryBuilder(UserPreferences)
      .insert({ user: row.id, ...defaultPreferences(timezone) })
      .onConflict('user')
      .ignore()
      .execute();
  });
});
