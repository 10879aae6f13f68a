import { spawn } from 'node:child_process';
import { delimiter, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { stripVTControlCharacters } from 'node:util';

export const PROJECT_ROOT = fileURLToPath(new URL('../..', import.meta.url));

export interface CommandResult {
  code: number | null;
  stdout: string;
  stderr: string;
  /** stdout and stderr as they came, interleaved. */
  output: string;
}

/**
 * Runs a command in the project without blocking this process's event loop (a fake server in
 * this process must keep answering), with this test's Node 24 first on PATH as `npm run` puts
 * the pinned one. `env` entries set to undefined are removed from the inherited environment.
 */
export function runCommand(
  command: string,
  args: string[],
  env: Record<string, string | undefined> = {},
): Promise<CommandResult> {
  const merged: Record<string, string | undefined> = {
    ...process.env,
    PATH: `${dirname(process.execPath)}${delimiter}${process.env.PATH}`,
    ...env,
  };
  for (const [key, value] of Object.entries(merged)) if (value === undefined) delete merged[key];
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, {
      cwd: PROJECT_ROOT,
      env: merged,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    let output = '';
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
      stdout += chunk;
      output += chunk;
    });
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => {
      stderr += chunk;
      output += chunk;
    });
    child.once('error', reject);
    child.once('close', (code) =>
      resolve({
        code,
        stdout: stripVTControlCharacters(stdout),
        stderr: stripVTControlCharacters(stderr),
        output: stripVTControlCharacters(output),
      }),
    );
  });
}

/** `npm run -s <script> -- <args>`. */
export function runNpmScript(
  script: string,
  args: string[] = [],
  env: Record<string, string | undefined> = {},
): Promise<CommandResult> {
  return runCommand('npm', ['run', '-s', script, '--', ...args], env);
}
