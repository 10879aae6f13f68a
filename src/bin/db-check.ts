import { randomUUID } from 'node:crypto';
import { loadConfigOrExit } from '../config.ts';
import { User, UserPreferences } from '../entities/index.ts';
import { initORM, type Services } from '../orm.ts';
import { runOrExit } from './run.ts';

/**
 * The database check: walks a user through create, find, preferences, a joined load and a
 * cascading delete on the real database, printing each step; exits non-zero naming the step
 * that failed. It leaves no rows behind.
 */
const clerkUserId = `db_check_${randomUUID()}`;
const email = 'db-check@example.com';
const queries: string[] = [];

const steps: Record<string, (services: Services) => Promise<string>> = {
  pgvector: async ({ em }) => {
    const [row] = await em
      .getConnection()
      .execute<{ extversion: string }[]>(
        "select extversion from pg_extension where extname = 'vector'",
      );
    if (!row) throw new Error('the vector extension is not enabled; run npm run migration:up');
    return `pgvector ${row.extversion} is enabled`;
  },
  'create user': async ({ em }) => {
    const user = em.fork().create(User, { clerkUserId, email, timezone: 'America/Los_Angeles' });
    await em.fork().persist(user).flush();
    return `created user ${user.id}`;
  },
  'find user by clerk_user_id': async ({ em }) => {
    const user = await em.fork().findOneOrFail(User, { clerkUserId });
    return `found user ${user.id} (timezone ${user.timezone})`;
  },
  'create preferences': async ({ em }) => {
    const fork = em.fork();
    const user = await fork.findOneOrFail(User, { clerkUserId });
    fork.create(UserPreferences, {
      user,
      theme: 'medieval',
      customHours: { start: '09:00', end: '17:00', timezone: 'America/Los_Angeles' },
      communicationPreferences: { email: true, sms: false, in_app: true },
    });
    await fork.flush();
    return 'created preferences with JSONB custom_hours and communication_preferences';
  },
  'load user with preferences in one query': async ({ em }) => {
    const before = queries.length;
    const user = await em
      .fork()
      .findOneOrFail(User, { clerkUserId }, { populate: ['preferences'] });
    const issued = queries.length - before;
    const preferences = user.preferences;
    if (
      preferences?.customHours?.start !== '09:00' ||
      preferences.communicationPreferences?.sms !== false
    ) {
      throw new Error('preferences did not come back with the user');
    }
    if (issued !== 1) throw new Error(`expected one query, the ORM issued ${issued}`);
    return `loaded user and preferences (theme ${preferences.theme}, hours ${preferences.customHours.start}-${preferences.customHours.end}) in 1 query`;
  },
  'delete user and cascade preferences': async ({ em }) => {
    const fork = em.fork();
    const user = await fork.findOneOrFail(User, { clerkUserId });
    const userId = user.id;
    await fork.remove(user).flush();
    const left = await em.fork().count(UserPreferences, { user: userId });
    if (left !== 0) throw new Error(`${left} preferences row(s) survived the delete`);
    return 'deleted the user; its preferences went with it (ON DELETE CASCADE)';
  },
};

await runOrExit(async () => {
  const config = loadConfigOrExit();
  const services = await initORM(config.databaseUrl, undefined, {
    onQuery: (sql) => {
      queries.push(sql);
      return sql;
    },
  });
  let failed = false;
  try {
    for (const [name, run] of Object.entries(steps)) {
      try {
        console.log(`ok   ${name}: ${await run(services)}`);
      } catch (error) {
        console.error(`FAIL ${name}: ${error instanceof Error ? error.message : String(error)}`);
        failed = true;
        break;
      }
    }
  } finally {
    // After a failed step the table may not even exist; that step's line already says why.
    await services.em
      .fork()
      .nativeDelete(User, { clerkUserId })
      .catch((error: unknown) => {
        if (!failed) throw error;
      });
    await services.orm.close();
  }
  if (failed) process.exit(1);
  console.log('database check passed');
});
