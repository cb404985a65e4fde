-- Why: pg_cron jobs and triggers call the Edge Functions through pg_net and need the
-- functions' base URL and the shared secret. Those must never be literals in a migration or a
-- trigger definition. In production they live in Supabase Vault; the local stack has no
-- Vault, so it writes them to cesar.local_settings. cesar.setting() is the one way to read
-- them, and it prefers Vault wherever Vault exists.
--
-- Names used by the machinery:
--   cesar_functions_url     base URL of the functions, e.g. https://<ref>.supabase.co/functions/v1
--   cesar_function_secret   the CESAR_FUNCTION_SECRET the functions accept as a bearer token

create table cesar.local_settings (
  name text primary key check (name ~ '^[a-z][a-z0-9_]*$'),
  value text not null,
  updated_at timestamptz not null default now()
);
comment on table cesar.local_settings is
  'Settings for databases without Supabase Vault (the local stack). Vault wins where it exists.';

create trigger local_settings_touch before update on cesar.local_settings
  for each row execute function cesar.touch_updated_at();

create function cesar.setting(setting_name text) returns text
language plpgsql
stable
security definer
set search_path = ''
as $$
declare
  found text;
begin
  -- Vault's view is looked up at run time: the same function works with and without Vault.
  if to_regclass('vault.decrypted_secrets') is not null then
    execute 'select decrypted_secret from vault.decrypted_secrets where name = $1 limit 1'
      into found using setting_name;
    if found is not null then
      return found;
    end if;
  end if;
  select s.value into found from cesar.local_settings s where s.name = setting_name;
  return found;
end
$$;
comment on function cesar.setting(text) is
  'Reads a secret or setting: Supabase Vault (vault.decrypted_secrets) first, then cesar.local_settings.';

-- It returns secrets: nobody but the owner and the service role may call it.
revoke execute on function cesar.setting(text) from public, anon, authenticated;
grant execute on function cesar.setting(text) to service_role;

-- The same, but an error naming the setting when it is missing, for callers that cannot go on.
create function cesar.require_setting(setting_name text) returns text
language plpgsql
stable
security definer
set search_path = ''
as $$
declare
  found text := cesar.setting(setting_name);
begin
  if found is null or found = '' then
    raise exception 'setting % is not configured', setting_name
      using hint = 'Add it to Supabase Vault (select vault.create_secret(value, name)) or, on the local stack, to cesar.local_settings.',
            errcode = 'P0002';
  end if;
  return found;
end
$$;
revoke execute on function cesar.require_setting(text) from public, anon, authenticated;
grant execute on function cesar.require_setting(text) to service_role;
