import { Migration } from '@mikro-orm/migrations';
import { refuseToDropRows } from '../src/orm.ts';

/**
 * The foundation: pgvector (for later semantic-memory tables) and the users and
 * user_preferences tables. down() drops the tables and keeps the extension, which other
 * schemas may already use.
 */
export class Migration20261125010000_create_users_and_preferences extends Migration {
  override up(): void {
    this.addSql('create extension if not exists vector;');

    this.addSql(`create table "users" (
      "id" uuid not null default gen_random_uuid(),
      "clerk_user_id" varchar(255) not null,
      "email" varchar(255) not null,
      "timezone" varchar(50) null default 'UTC',
      "created_at" timestamptz null default now(),
      "updated_at" timestamptz null default now(),
      primary key ("id"));`);
    // The unique constraint's index is the index on clerk_user_id.
    this.addSql(
      'alter table "users" add constraint "users_clerk_user_id_unique" unique ("clerk_user_id");',
    );

    this.addSql(`create table "user_preferences" (
      "id" uuid not null default gen_random_uuid(),
      "user_id" uuid not null,
      "custom_hours" jsonb null,
      "theme" varchar(50) null default 'modern',
      "communication_preferences" jsonb null,
      "onboarding_completed" boolean null default false,
      "created_at" timestamptz null default now(),
      "updated_at" timestamptz null default now(),
      primary key ("id"));`);
    this.addSql(
      'alter table "user_preferences" add constraint "user_preferences_user_id_unique" unique ("user_id");',
    );
    this.addSql(`alter table "user_preferences" add constraint "user_preferences_user_id_foreign"
      foreign key ("user_id") references "users" ("id") on delete cascade;`);
  }

  override async down(): Promise<void> {
    await refuseToDropRows(this, ['users', 'user_preferences']);
    this.addSql('drop table if exists "user_preferences" cascade;');
    this.addSql('drop table if exists "users" cascade;');
  }
}
