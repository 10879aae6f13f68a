import { ConfigError, exitWithError } from '../config.ts';
import { DatabaseUnavailableError } from '../errors.ts';

/** Runs a command; a configuration or connection problem ends it with one readable line. */
export async function runOrExit(main: () => Promise<void>): Promise<void> {
  try {
    await main();
  } catch (error) {
    if (error instanceof ConfigError || error instanceof DatabaseUnavailableError) {
      exitWithError(error.message);
    }
    throw error;
  }
}
