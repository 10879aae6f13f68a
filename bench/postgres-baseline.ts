import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import pg from 'pg';
import { defaultPreferences } from '../src/entities/index.ts';
import { countRows, SERVER_URL } from '../test/support/database.ts';
import { generateUsers } from '../test/support/fake-clerk-api.ts';
import { processCpuMicros } from './cpu.ts';
import { freshDatabase, Scope } from './fixtures.ts';

const SCRIPT = fileURLToPath(new URL('./pgbench/user-upsert.sql', import.meta.url));
export const PGBENCH_CLIENTS = 16;
const PGBENCH_THREADS = 2;

export interface PgbenchResult {
  /** Transactions per second, each one event's user and preferences. */
  tps: number;
  transactions: number;
  rows: number;
  clients: number;
  seconds: number;
}

/**
 * PostgreSQL on its own, one transaction per event (bench/pgbench/user-upsert.sql), 16
 * clients, against a fresh migrated database: what the worker's writes cost without BullMQ,
 * Node or batching.
 */
export function measurePgbench(seconds: number): Promise<PgbenchResult> {
  return Scope.run(async (scope) => {
    const database = await freshDatabase(scope);
    const server = new URL(SERVER_URL);
    const { stdout } = await promisify(execFile)(
      process.env.PGBENCH ?? 'pgbench',
      [
        '--no-vacuum',
        `--client=${PGBENCH_CLIENTS}`,
        `--jobs=${PGBENCH_THREADS}`,
        `--time=${seconds}`,
        `--file=${SCRIPT}`,
        `--host=${server.hostname}`,
        `--port=${server.port || '5432'}`,
        `--username=${decodeURIComponent(server.username) || 'postgres'}`,
        database.name,
      ],
      { env: { ...process.env, PGPASSWORD: decodeURIComponent(server.password) } },
    );
    const tps = /^tps = ([\d.]+) \(without initial connection time\)$/m.exec(stdout)?.[1];
    const transactions = /^number of transactions actually processed: (\d+)/m.exec(stdout)?.[1];
    if (!tps || !transactions) throw new Error(`cannot read pgbench's output:\n${stdout}`);
    return {
      tps: Number(tps),
      transactions: Number(transactions),
      rows: await countRows(database, 'users'),
      clients: PGBENCH_CLIENTS,
      seconds,
    };
  });
}

export interface PostgresBackfillResult {
  users: number;
  usersPerSecond: number;
  /** CPU the PostgreSQL backend spent per user: what any backfill's writes cost the machine. */
  backendCpuMicrosPerUser: number;
}

const BACKFILL_PAGE = 500;
/** MikroORM's default batch size: a page's 500 inserts go as 300 and 200. */
const INSERT_BATCH = 300;

/**
 * PostgreSQL on its own doing a backfill's statements for `users` new users, as MikroORM sends
 * them for each page of 500 (values inlined, inserts of 300 and 200): lock, read the stored
 * users and tombstones, write the checkpoint, insert the users and their preferences. One
 * connection, nothing else working: the writes' share of the machine, and their ceiling.
 */
export function measurePostgresBackfill(users: number): Promise<PostgresBackfillResult> {
  return Scope.run(async (scope) => {
    const database = await freshDatabase(scope);
    const client = new pg.Client({ connectionString: database.url });
    await client.connect();
    scope.defer(() => client.end());
    const { rows } = await client.query<{ pid: number }>('select pg_backend_pid() as pid');
    const pid = rows[0]?.pid as number;
    const list = (values: string[]) =>
      values.map((value) => client.escapeLiteral(value)).join(', ');
    const generated = generateUsers(users);
    const pages = Array.from({ length: Math.ceil(users / BACKFILL_PAGE) }, (_, page) =>
      generated.slice(page * BACKFILL_PAGE, (page + 1) * BACKFILL_PAGE),
    );
    const preferences = defaultPreferences('UTC');
    const preferencesValues = [
      client.escapeLiteral(JSON.stringify(preferences.customHours)),
      client.escapeLiteral(preferences.theme),
      client.escapeLiteral(JSON.stringify(preferences.communicationPreferences)),
      String(preferences.onboardingCompleted),
    ].join(', ');

    const cpuBefore = await processCpuMicros(pid);
    const startedAt = performance.now();
    for (const [page, pageUsers] of pages.entries()) {
      const ids = list(pageUsers.map((user) => user.id));
      await client.query('begin');
      await client.query(
        `select pg_advisory_xact_lock(lock_key) from (select distinct hashtextextended(id, 0) as lock_key from unnest(array[${ids}]::text[]) as ids(id) order by lock_key) as keys`,
      );
      await client.query(
        `select "u0".*, "p1"."id" as "p1__id", "p1"."user_id" as "p1__user_id", "p1"."custom_hours" as "p1__custom_hours", "p1"."theme" as "p1__theme", "p1"."communication_preferences" as "p1__communication_preferences", "p1"."onboarding_completed" as "p1__onboarding_completed", "p1"."created_at" as "p1__created_at", "p1"."updated_at" as "p1__updated_at" from "users" as "u0" left join "user_preferences" as "p1" on "u0"."id" = "p1"."user_id" where "u0"."clerk_user_id" in (${ids})`,
      );
      await client.query(
        `select clerk_user_id from deleted_clerk_users where clerk_user_id in (${ids})`,
      );
      await client.query(
        `insert into "sync_checkpoints" ("name", "next_offset", "updated_at") values ('floor', ${(page + 1) * BACKFILL_PAGE}, now()) on conflict ("name") do update set "next_offset" = excluded."next_offset", "updated_at" = excluded."updated_at" returning "updated_at"`,
      );
      for (let start = 0; start < pageUsers.length; start += INSERT_BATCH) {
        const batch = pageUsers.slice(start, start + INSERT_BATCH);
        const inserted = await client.query<{ id: string }>(
          `insert into "users" ("clerk_user_id", "email", "timezone", "clerk_updated_at") values ${batch
            .map(
              (user) =>
                `(${list([user.id, user.email ?? ''])}, 'UTC', '${new Date(user.updatedAt).toISOString()}')`,
            )
            .join(', ')} returning "id", "created_at", "updated_at"`,
        );
        await client.query(
          `insert into "user_preferences" ("user_id", "custom_hours", "theme", "communication_preferences", "onboarding_completed") values ${inserted.rows
            .map((row) => `('${row.id}', ${preferencesValues})`)
            .join(', ')} returning "id", "created_at", "updated_at"`,
        );
      }
      await client.query('commit');
    }
    const seconds = (performance.now() - startedAt) / 1000;
    const cpuMicros = (await processCpuMicros(pid)) - cpuBefore;
    const stored = await countRows(database, 'users');
    if (stored !== users) throw new Error(`PostgreSQL alone stored ${stored} of ${users} users`);
    return {
      users,
      usersPerSecond: users / seconds,
      backendCpuMicrosPerUser: cpuMicros / users,
    };
  });
}
