import { inspect, type ParseArgsOptionsConfig, parseArgs } from 'node:util';
import { exitWithError } from '../config.ts';
import {
  ClerkApiError,
  ConfigError,
  DatabaseUnavailableError,
  isReadOnly,
  isSchemaBehind,
  READ_ONLY_DATABASE,
} from '../errors.ts';
import { scrub } from '../logger.ts';

/**
 * Runs a command; a configuration or connection problem, a database whose migrations have not
 * run or that takes no writes, a mistyped argument, or the Clerk API's final answer (a bad key,
 * a page that kept failing) ends it with one readable line.
 * Anything else ends it with the error's full account, scrubbed like a log line: a database
 * error can quote the row it refused, and a command's output often lands in a log collector.
 */
export async function runOrExit(main: () => Promise<void>): Promise<void> {
  try {
    await main();
  } catch (error) {
    if (isSchemaBehind(error)) {
      exitWithError(
        `DATABASE_URL: the database is not migrated (${scrub(error.message)}); run npm run migration:up`,
      );
    }
    if (isReadOnly(error)) {
      exitWithError(`${READ_ONLY_DATABASE} (${scrub(error.message)})`);
    }
    const known =
      error instanceof ConfigError ||
      error instanceof DatabaseUnavailableError ||
      error instanceof ClerkApiError ||
      isArgumentError(error);
    exitWithError(known ? (error as Error).message : scrub(inspect(error)));
  }
}

/**
 * A command's options and arguments, with --help (-h) added: it prints `usage` and ends the
 * command successfully. A command that takes `arguments` ends with its usage when given none.
 */
export function parseCommandLine<const Options extends ParseArgsOptionsConfig>(
  usage: string,
  options: Options,
  { takesArguments = false } = {},
) {
  const { values, positionals } = parseArgs<{
    options: Options & { help: { type: 'boolean'; short: 'h' } };
    allowPositionals: boolean;
  }>({
    allowPositionals: takesArguments,
    options: { ...options, help: { type: 'boolean', short: 'h' } },
  });
  if ((values as { help?: boolean }).help) {
    process.stdout.write(`${usage}\n`);
    process.exit(0);
  }
  if (takesArguments && positionals.length === 0) exitWithError(usage);
  return { values, positionals };
}

function isArgumentError(error: unknown): error is Error {
  const code = (error as { code?: unknown })?.code;
  return error instanceof Error && typeof code === 'string' && code.startsWith('ERR_PARSE_ARGS');
}
