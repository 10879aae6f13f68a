import { beforeAll } from 'vitest';
import type { ServiceProcess } from '../../support/services.ts';
import { type FaultStack, useFaultStack } from '../../support/stack.ts';

export interface ReceiverUnderTest {
  stack: FaultStack;
  receiver: ServiceProcess;
}

/**
 * A fault stack of the test file's own (database, redis-server, queue) and one receiver process
 * on it, started before the file's tests and stopped after them. Read its fields inside tests.
 */
export function receiverUnderTest(env: Record<string, string> = {}): ReceiverUnderTest {
  const running = { stack: useFaultStack() } as ReceiverUnderTest;
  beforeAll(async () => {
    running.receiver = await running.stack.startReceiver(env);
  });
  return running;
}
