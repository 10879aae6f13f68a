/** Every error class of clerk-sync; callers tell them apart with instanceof. */

/** The environment is not a valid configuration: the message names each bad variable. */
export class ConfigError extends Error {
  override name = 'ConfigError';
}

/** PostgreSQL could not be reached: the message names DATABASE_URL's server and the reason. */
export class DatabaseUnavailableError extends Error {
  override name = 'DatabaseUnavailableError';
}

/** Redis cannot take a job now (the receiver answers 503, and Svix retries). */
export class QueueUnavailableError extends Error {
  override name = 'QueueUnavailableError';
}

/** A payload that can never become a change: not a Clerk user, or a deletion without an id. */
export class InvalidPayloadError extends Error {
  override name = 'InvalidPayloadError';
}

/** A Backend API request that failed for good. */
export class ClerkApiError extends Error {
  override name = 'ClerkApiError';
  /** The HTTP status of the final answer; undefined when there was none (a network error). */
  readonly status: number | undefined;

  constructor(message: string, status: number | undefined) {
    super(message);
    this.status = status;
  }
}

/** Something that should have answered did not in time. */
export class TimeoutError extends Error {
  override name = 'TimeoutError';
}

/**
 * PostgreSQL's codes for a table, column or function that is not there (undefined_table,
 * undefined_column, undefined_function): the database's schema is behind the code's.
 */
const SCHEMA_BEHIND = new Set(['42P01', '42703', '42883']);

/** PostgreSQL's read_only_sql_transaction: a write sent to a standby or a read replica. */
const READ_ONLY = '25006';

/** What an operator must do about a database that takes no writes, for log lines and commands. */
export const READ_ONLY_DATABASE =
  'the database is read-only: DATABASE_URL must name the primary, not a standby or a read replica';

/** The driver's SQLSTATE of a database error (MikroORM's exceptions keep it). */
const sqlState = (error: unknown) =>
  error instanceof Error ? (error as { code?: unknown }).code : undefined;

/** Whether a database error says the migrations have not run. */
export function isSchemaBehind(error: unknown): error is Error {
  return SCHEMA_BEHIND.has(sqlState(error) as string);
}

/** Whether a database error says the database takes no writes. */
export function isReadOnly(error: unknown): error is Error {
  return sqlState(error) === READ_ONLY;
}
