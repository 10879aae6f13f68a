/** PostgreSQL could not be reached: the message names DATABASE_URL's server and the reason. */
export class DatabaseUnavailableError extends Error {
  override name = 'DatabaseUnavailableError';
}

/** A payload that can never become a change: not a Clerk user, or a deletion without an id. */
export class InvalidPayloadError extends Error {
  override name = 'InvalidPayloadError';
}
