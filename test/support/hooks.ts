import { afterAll, afterEach, beforeAll, beforeEach } from 'vitest';
import { createTestDatabase, sql, type TestDatabase } from './database.ts';

/**
 * Something the tests of a file (or of the describe block it is called in) share: started
 * before them, stopped after them. What this returns stands for it once started, so that it is
 * read inside hooks and tests, and from the file's own beforeAll registered after this call.
 */
export function useStarted<T extends object>(
  start: () => Promise<T>,
  stop: (started: T) => Promise<unknown>,
): T {
  let started: T | undefined;
  beforeAll(async () => {
    started = await start();
  });
  afterAll(() => started && stop(started));
  return new Proxy({} as T, {
    get(_, key) {
      if (!started) throw new Error('used before its beforeAll started it');
      return Reflect.get(started, key);
    },
  });
}

/**
 * createTestDatabase() before the tests of the file (or describe block), dropped after them;
 * with `emptyEachTest`, its tables are emptied before each test.
 */
export function useTestDatabase(
  options: { migrate?: boolean; emptyEachTest?: boolean } = {},
): TestDatabase {
  const db = useStarted(
    () => createTestDatabase(options),
    (started) => started.drop(),
  );
  if (options.emptyEachTest) {
    beforeEach(() =>
      sql(db, 'truncate users, user_preferences, deleted_clerk_users, sync_checkpoints cascade'),
    );
  }
  return db;
}

/**
 * Registers an afterEach that undoes, newest first, what the test asked it to; returns the
 * function a test asks with.
 */
export function cleanUpAfterEach(): (cleanup: () => Promise<unknown>) => void {
  const cleanups: (() => Promise<unknown>)[] = [];
  afterEach(async () => {
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
  });
  return (cleanup) => {
    cleanups.push(cleanup);
  };
}
