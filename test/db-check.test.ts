import { describe, expect, it } from 'vitest';
import { User, UserPreferences } from '../src/entities/index.ts';
import { runNpmScript } from './support/cli.ts';
import { countRows, sql } from './support/database.ts';
import { useTestDatabase } from './support/hooks.ts';

const CLI_TIMEOUT_MS = 60_000;
const STEPS = [
  'create user',
  'find user by clerk_user_id',
  'create preferences',
  'load user with preferences in one query',
  'delete user and cascade preferences',
];

/** `npm run -s db:check`; stdout and stderr as one list of lines. */
async function runDbCheck(databaseUrl: string): Promise<{ code: number | null; lines: string[] }> {
  const { code, output } = await runNpmScript('db:check', [], { DATABASE_URL: databaseUrl });
  return { code, lines: output.split('\n').filter(Boolean) };
}

function expectNoStackTrace(lines: string[]): void {
  expect(lines.filter((line) => line.startsWith('    at '))).toEqual([]);
}

describe('npm run db:check on a migrated database', { timeout: CLI_TIMEOUT_MS }, () => {
  const db = useTestDatabase();

  it('reports every step and pgvector, passes, and leaves no rows behind', async () => {
    const { code, lines } = await runDbCheck(db.url);
    expect(code, lines.join('\n')).toBe(0);
    for (const step of STEPS) {
      expect(lines.filter((line) => line.startsWith(`ok   ${step}: `))).toHaveLength(1);
    }
    expect(lines).toContainEqual(expect.stringMatching(/^ok {3}pgvector: pgvector \d+\.\d+/));
    expect(lines.at(-1)).toBe('database check passed');
    expect(await countRows(db, 'users')).toBe(0);
    expect(await countRows(db, 'user_preferences')).toBe(0);
  });

  it("leaves the application's own users and preferences alone", async () => {
    const em = db.em.fork();
    const user = em.create(User, { clerkUserId: 'user_existing', email: 'kept@example.com' });
    em.create(UserPreferences, { user, theme: 'classic' });
    await em.flush();

    const { code, lines } = await runDbCheck(db.url);
    expect(code, lines.join('\n')).toBe(0);
    expect(await sql(db, 'select clerk_user_id from users')).toEqual([
      { clerk_user_id: 'user_existing' },
    ]);
    expect(await sql(db, 'select theme from user_preferences')).toEqual([{ theme: 'classic' }]);
  });
});

describe('npm run db:check on a database never migrated', { timeout: CLI_TIMEOUT_MS }, () => {
  const db = useTestDatabase({ migrate: false });

  it('fails, naming the pgvector step, in readable lines', async () => {
    const { code, lines } = await runDbCheck(db.url);
    expect(code).not.toBe(0);
    expect(lines).toContainEqual(expect.stringMatching(/^FAIL pgvector: /));
    expect(lines).not.toContain('database check passed');
    expectNoStackTrace(lines);
  });

  it('fails at the first step that needs the tables when only pgvector is there', async () => {
    await sql(db, 'create extension if not exists vector');
    const { code, lines } = await runDbCheck(db.url);
    expect(code).not.toBe(0);
    expect(lines).toContainEqual(expect.stringMatching(/^ok {3}pgvector: /));
    expect(lines).toContainEqual(expect.stringMatching(/^FAIL create user: .*users/));
    expect(lines.filter((line) => line.startsWith('FAIL '))).toHaveLength(1);
    expectNoStackTrace(lines);
  });
});
