import { exitWithError } from '../config.ts';
import { ConfigError, DatabaseUnavailableError } from '../errors.ts';

/**
 * Runs a command; a configuration or connection problem, or a mistyped argument, ends it with
 * one readable line.
 */
export async function runOrExit(main: () => Promise<void>): Promise<void> {
  try {
    await main();
  } catch (error) {
    if (error instanceof ConfigError || error instanceof DatabaseUnavailableError) {
      exitWithError(error.message);
    }
    if (isArgumentError(error)) exitWithError(error.message);
    throw error;
  }
}

/** Prints a command's usage on request (--help) and ends it successfully. */
export function exitWithUsage(usage: string): never {
  process.stdout.write(`${usage}\n`);
  process.exit(0);
}

function isArgumentError(error: unknown): error is Error {
  const code = (error as { code?: unknown })?.code;
  return error instanceof Error && typeof code === 'string' && code.startsWith('ERR_PARSE_ARGS');
}
