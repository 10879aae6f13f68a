import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { useStarted } from '../../support/hooks.ts';
import type { TlsFiles } from '../../support/redis-server.ts';

const run = promisify(execFile);
const EC_KEY = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];

/** A test CA, a server certificate it signed for 127.0.0.1 and localhost, and a CA that signed nothing. */
export interface TestCertificates extends TlsFiles {
  /** A CA that did not sign the server's certificate: trusting only it must fail. */
  otherCa: string;
}

/** Makes the certificates with openssl in `dir`, as an operator would for a private CA. */
export async function createCertificates(dir: string): Promise<TestCertificates> {
  const file = (name: string) => join(dir, name);
  const selfSignedCa = (name: string) =>
    run('openssl', [
      'req',
      '-x509',
      ...EC_KEY,
      '-days',
      '2',
      '-subj',
      `/CN=clerk-sync test ${name}`,
      '-keyout',
      file(`${name}.key`),
      '-out',
      file(`${name}.crt`),
    ]);
  await Promise.all([selfSignedCa('ca'), selfSignedCa('other-ca')]);
  await run('openssl', [
    'req',
    ...EC_KEY,
    '-subj',
    '/CN=127.0.0.1',
    '-keyout',
    file('server.key'),
    '-out',
    file('server.csr'),
  ]);
  await writeFile(file('server.ext'), 'subjectAltName=IP:127.0.0.1,DNS:localhost\n');
  await run('openssl', [
    'x509',
    '-req',
    '-in',
    file('server.csr'),
    '-CA',
    file('ca.crt'),
    '-CAkey',
    file('ca.key'),
    '-CAcreateserial',
    '-days',
    '2',
    '-extfile',
    file('server.ext'),
    '-out',
    file('server.crt'),
  ]);
  return {
    ca: file('ca.crt'),
    cert: file('server.crt'),
    key: file('server.key'),
    otherCa: file('other-ca.crt'),
  };
}

/** createCertificates() in a temporary directory before the tests, removed after them. */
export function useCertificates(): TestCertificates {
  return useStarted(
    async () => {
      const dir = await mkdtemp(join(tmpdir(), 'clerk-sync-infra-certs-'));
      return { ...(await createCertificates(dir)), dir };
    },
    (certificates) => rm(certificates.dir, { recursive: true, force: true }),
  );
}
