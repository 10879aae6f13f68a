/** PostgreSQL could not be reached: the message names DATABASE_URL's server and the reason. */
export class DatabaseUnavailableError extends Error {
  override name = 'DatabaseUnavailableError';
}
