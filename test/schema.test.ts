import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MikroORM } from '@mikro-orm/postgresql';
import { beforeAll, describe, expect, it } from 'vitest';
import { DOWN_DROPS_ROWS, ormOptions, type Services } from '../src/orm.ts';
import { runCommand, runNpmScript } from './support/cli.ts';
import { countRows, migrationNames, sql, type TestDatabase } from './support/database.ts';
import { useTestDatabase } from './support/hooks.ts';

const CLI_TIMEOUT_MS = 120_000;

/** The data model the migrations must build, as information_schema.columns reports it. */
const SPEC_COLUMNS = {
  users: {
    id: column('uuid', null, 'NO', 'gen_random_uuid()'),
    clerk_user_id: column('character varying', 255, 'NO', null),
    email: column('character varying', 255, 'NO', null),
    timezone: column('character varying', 50, 'YES', "'UTC'::character varying"),
    created_at: column('timestamp with time zone', null, 'YES', 'now()'),
    updated_at: column('timestamp with time zone', null, 'YES', 'now()'),
  },
  user_preferences: {
    id: column('uuid', null, 'NO', 'gen_random_uuid()'),
    user_id: column('uuid', null, 'NO', null),
    custom_hours: column('jsonb', null, 'YES', null),
    theme: column('character varying', 50, 'YES', "'modern'::character varying"),
    communication_preferences: column('jsonb', null, 'YES', null),
    onboarding_completed: column('boolean', null, 'YES', 'false'),
    created_at: column('timestamp with time zone', null, 'YES', 'now()'),
    updated_at: column('timestamp with time zone', null, 'YES', 'now()'),
  },
};

function column(
  data_type: string,
  character_maximum_length: number | null,
  is_nullable: 'YES' | 'NO',
  column_default: string | null,
) {
  return { data_type, character_maximum_length, is_nullable, column_default };
}

async function columnsOf(services: Services, table: string) {
  const rows = await sql<{ column_name: string } & ReturnType<typeof column>>(
    services,
    `select column_name, data_type, character_maximum_length, is_nullable, column_default
       from information_schema.columns
      where table_schema = 'public' and table_name = ?`,
    [table],
  );
  return Object.fromEntries(rows.map(({ column_name, ...rest }) => [column_name, rest]));
}

interface ConstraintRow {
  name: string;
  type: 'p' | 'u' | 'f' | 'c';
  columns: string[];
  referenced_table: string | null;
  referenced_columns: string[] | null;
  on_delete: string;
}

async function constraintsOf(services: Services, table: string): Promise<ConstraintRow[]> {
  return sql<ConstraintRow>(
    services,
    `select c.conname as name, c.contype::text as type,
            array(select attname::text from unnest(c.conkey) k join pg_attribute a
                   on a.attrelid = c.conrelid and a.attnum = k) as columns,
            c.confrelid::regclass::text as referenced_table,
            array(select attname::text from unnest(c.confkey) k join pg_attribute a
                   on a.attrelid = c.confrelid and a.attnum = k) as referenced_columns,
            c.confdeltype::text as on_delete
       from pg_constraint c
      where c.conrelid = ?::regclass
      order by c.conname`,
    [`public.${table}`],
  );
}

async function indexedColumnSets(services: Services, table: string): Promise<string[][]> {
  const rows = await sql<{ columns: string[] }>(
    services,
    `select array(select attname::text from unnest(i.indkey) k join pg_attribute a
                   on a.attrelid = i.indrelid and a.attnum = k) as columns
       from pg_index i
      where i.indrelid = ?::regclass`,
    [`public.${table}`],
  );
  return rows.map((row) => row.columns);
}

/**
 * Everything that makes up the public schema, with nothing that changes between runs: the
 * columns in order (not their attnum, which keeps gaps after a dropped column), constraints,
 * indexes, extensions and the names (not times) of executed migrations.
 */
async function schemaFingerprint(services: Services) {
  const query = (text: string) => sql(services, text);
  return {
    columns: await query(`
      select c.relname as table, a.attname as column, format_type(a.atttypid, a.atttypmod) as type,
             a.attnotnull as not_null, pg_get_expr(d.adbin, d.adrelid) as default_value
        from pg_attribute a
        join pg_class c on c.oid = a.attrelid
        join pg_namespace n on n.oid = c.relnamespace
        left join pg_attrdef d on d.adrelid = a.attrelid and d.adnum = a.attnum
       where n.nspname = 'public' and c.relkind in ('r', 'p') and a.attnum > 0
         and not a.attisdropped
       order by c.relname, a.attnum`),
    constraints: await query(`
      select c.conrelid::regclass::text as table, c.conname as name,
             pg_get_constraintdef(c.oid) as definition
        from pg_constraint c
        join pg_namespace n on n.oid = c.connamespace
       where n.nspname = 'public'
       order by 1, 2`),
    indexes: await query(`
      select tablename, indexname, indexdef from pg_indexes
       where schemaname = 'public' order by 1, 2`),
    extensions: await query('select extname, extversion from pg_extension order by 1'),
    migrations: await query('select name from mikro_orm_migrations order by name'),
  };
}

async function tableExists(services: Services, table: string): Promise<boolean> {
  const [row] = await sql<{ exists: boolean }>(
    services,
    'select to_regclass(?) is not null as exists',
    [`public.${table}`],
  );
  return row?.exists ?? false;
}

async function hasExtension(services: Services, name: string): Promise<boolean> {
  const rows = await sql(services, 'select 1 from pg_extension where extname = ?', [name]);
  return rows.length === 1;
}

const npmRun = (script: string, db: TestDatabase, ...args: string[]) =>
  runNpmScript(script, args, { DATABASE_URL: db.url });

const db = useTestDatabase();

describe('the migrated schema', () => {
  it.each(Object.entries(SPEC_COLUMNS))(
    '%s has every column of the data model',
    async (table, expected) => {
      const actual = await columnsOf(db, table);
      for (const [name, definition] of Object.entries(expected)) {
        expect({ [name]: actual[name] }).toEqual({ [name]: definition });
      }
    },
  );

  it('keys both tables by id', async () => {
    for (const table of ['users', 'user_preferences']) {
      const primaryKeys = (await constraintsOf(db, table)).filter((c) => c.type === 'p');
      expect(primaryKeys.map((c) => c.columns)).toEqual([['id']]);
    }
  });

  it('makes users.clerk_user_id unique and indexed', async () => {
    const unique = (await constraintsOf(db, 'users')).filter((c) => c.type === 'u');
    expect(unique.map((c) => c.columns)).toContainEqual(['clerk_user_id']);
    expect(await indexedColumnSets(db, 'users')).toContainEqual(['clerk_user_id']);
  });

  it('allows one preferences row per user, deleted with its user', async () => {
    const constraints = await constraintsOf(db, 'user_preferences');
    expect(constraints.filter((c) => c.type === 'u').map((c) => c.columns)).toContainEqual([
      'user_id',
    ]);
    expect(constraints.filter((c) => c.type === 'f')).toEqual([
      expect.objectContaining({
        columns: ['user_id'],
        referenced_table: 'users',
        referenced_columns: ['id'],
        on_delete: 'c',
      }),
    ]);
  });

  it('installs the vector extension', async () => {
    expect(await hasExtension(db, 'vector')).toBe(true);
  });
});

describe('the migrator', () => {
  it('goes all the way down, keeping pgvector, and back up to the same schema', async () => {
    const before = await schemaFingerprint(db);

    await db.orm.migrator.down({ to: 0 });
    expect(await tableExists(db, 'users')).toBe(false);
    expect(await tableExists(db, 'user_preferences')).toBe(false);
    expect(await hasExtension(db, 'vector')).toBe(true);
    expect(await db.orm.migrator.getExecuted()).toEqual([]);

    await db.orm.migrator.up();
    expect(await schemaFingerprint(db)).toEqual(before);
  });

  it('creates a new, empty migration without touching the project migrations', async () => {
    const folder = await mkdtemp(join(tmpdir(), 'clerk-sync-migrations-'));
    const defaults = ormOptions(db.url).migrations;
    const orm = new MikroORM(
      ormOptions(db.url, undefined, {
        migrations: { ...defaults, path: folder, pathTs: folder },
      }),
    );
    const projectMigrations = await migrationNames();
    try {
      const result = await orm.migrator.create(undefined, true);
      expect(await readdir(folder)).toEqual([result.fileName]);
      expectEmptyMigration(await readFile(join(folder, result.fileName), 'utf8'), result.fileName);
      expect(await migrationNames()).toEqual(projectMigrations);
    } finally {
      await orm.close();
      await rm(folder, { recursive: true, force: true });
    }
  });
});

/** MikroORM's blank migration holds a `select 1` placeholder in each method: nothing to apply. */
function expectEmptyMigration(code: string, fileName: string): void {
  const className = fileName.replace(/\.ts$/, '');
  expect(fileName).toMatch(/^Migration\d{14}\.ts$/);
  expect(code).toContain(`export class ${className} extends Migration {`);
  for (const method of ['up', 'down']) {
    const body = code.match(new RegExp(`override ${method}\\(\\)[^{]*\\{([^}]*)\\}`))?.[1];
    expect(body, `${method}() in\n${code}`).toBeDefined();
    const statements = body
      ?.split('\n')
      .map((line) => line.trim())
      .filter(Boolean);
    for (const statement of statements ?? []) expect(statement).toBe('this.addSql(`select 1`);');
  }
}

describe('the migration commands', { timeout: CLI_TIMEOUT_MS }, () => {
  const cliDb = useTestDatabase({ migrate: false });

  it('npm run migration:up builds the same schema as the application migrator', async () => {
    const result = await npmRun('migration:up', cliDb);
    expect(result.code, result.output).toBe(0);
    expect(result.output).toContain('Successfully migrated up');
    expect(await schemaFingerprint(cliDb)).toEqual(await schemaFingerprint(db));
  });

  it('npm run migration:list lists every migration as executed', async () => {
    const result = await npmRun('migration:list', cliDb);
    expect(result.code, result.output).toBe(0);
    for (const name of await migrationNames()) expect(result.output).toContain(name);
  });

  it('npm run migration:check finds no drift between entities and migrations', async () => {
    const result = await npmRun('migration:check', cliDb);
    expect(result.code, result.output).toBe(0);
    expect(result.output).toContain('No changes required');
  });

  it.each([
    ['npm run', (command: string) => npmRun(`migration:${command}`, cliDb)],
    [
      'npx mikro-orm (no npm script)',
      (command: string) =>
        runCommand('npx', ['mikro-orm', `migration:${command}`], { DATABASE_URL: cliDb.url }),
    ],
  ])(
    '%s migration:down reverts the newest migration, and migration:up restores the schema',
    async (_, migration) => {
      const before = await schemaFingerprint(cliDb);
      const names = await migrationNames();

      const down = await migration('down');
      expect(down.code, down.output).toBe(0);
      const executed = await sql(cliDb, 'select name from mikro_orm_migrations order by name');
      expect(executed.map((row) => row.name)).toEqual(names.slice(0, -1));
      expect(await schemaFingerprint(cliDb)).not.toEqual(before);
      const list = await migration('list');
      expect(list.code, list.output).toBe(0);
      expect(list.output).not.toContain(names.at(-1));

      const up = await migration('up');
      expect(up.code, up.output).toBe(0);
      expect(await schemaFingerprint(cliDb)).toEqual(before);
    },
  );

  it(`npm run migration:down refuses to drop tables that hold rows, changing nothing, unless ${DOWN_DROPS_ROWS}=yes`, async () => {
    const before = await schemaFingerprint(cliDb);
    await sql(
      cliDb,
      "insert into users (clerk_user_id, email) values ('user_kept', 'kept@example.com')",
    );

    const refused = await npmRun('migration:down', cliDb, '--to', '0');
    expect(refused.code).not.toBe(0);
    expect(refused.output).toContain(
      `would drop the rows of users; nothing was changed (run it with ${DOWN_DROPS_ROWS}=yes to drop them)`,
    );
    expect(await schemaFingerprint(cliDb)).toEqual(before);
    expect(await countRows(cliDb, 'users')).toBe(1);

    const told = await runNpmScript('migration:down', ['--to', '0'], {
      DATABASE_URL: cliDb.url,
      [DOWN_DROPS_ROWS]: 'yes',
    });
    expect(told.code, told.output).toBe(0);
    expect(await tableExists(cliDb, 'users')).toBe(false);
    expect((await npmRun('migration:up', cliDb)).code).toBe(0);
    expect(await schemaFingerprint(cliDb)).toEqual(before);
  });

  it('npm run migration:create writes a new, empty migration where it is told to', async () => {
    const folder = await mkdtemp(join(tmpdir(), 'clerk-sync-migrations-'));
    try {
      const result = await npmRun('migration:create', cliDb, '--path', folder);
      expect(result.code, result.output).toBe(0);
      const files = await readdir(folder);
      expect(files).toHaveLength(1);
      const [fileName = ''] = files;
      expectEmptyMigration(await readFile(join(folder, fileName), 'utf8'), fileName);
    } finally {
      await rm(folder, { recursive: true, force: true });
    }
  });
});

describe('npm run migration:check on a database that drifted', { timeout: CLI_TIMEOUT_MS }, () => {
  const driftedDb = useTestDatabase();
  beforeAll(() => sql(driftedDb, 'alter table users drop column email'));

  it('exits non-zero and says the schema needs changes', async () => {
    const result = await npmRun('migration:check', driftedDb);
    expect(result.code, result.output).not.toBe(0);
    expect(result.output).toContain('Changes detected');
  });
});
