import { p } from '@mikro-orm/core';

/** A uuid key made by PostgreSQL. */
export const uuidPrimaryKey = {
  id: p.uuid().primary().defaultRaw('gen_random_uuid()'),
};

/** Creation and update times with database defaults; the unit of work bumps updatedAt on every update. */
export const timestamps = {
  createdAt: p.datetime().columnType('timestamptz').defaultRaw('now()').nullable(),
  updatedAt: p
    .datetime()
    .columnType('timestamptz')
    .defaultRaw('now()')
    .nullable()
    .onUpdate(() => new Date()),
};
