-- fieldops initial schema: geography, people, accounts, directives, tasks, reports,
-- the transactional outbox, consumer de-duplication, idempotency keys and the audit log.

create table city (
    id          text primary key,
    name_zh     text not null,
    name_en     text not null,
    timezone    text not null,
    boundary    jsonb,
    created_at  timestamptz not null default now(),
    updated_at  timestamptz not null default now()
);

create table team (
    id          text primary key,
    city_id     text not null references city (id),
    name        text not null,
    created_at  timestamptz not null default now()
);
create index team_city_idx on team (city_id);

-- a territory's id is global; PUT /cities/{id}/territories replaces one city's set
create table territory (
    id          text primary key,
    city_id     text not null references city (id),
    name        text not null,
    team_id     text references team (id),
    geometry    jsonb not null,
    created_at  timestamptz not null default now()
);
create index territory_city_idx on territory (city_id);

create table app_user (
    id             text primary key,
    username       text not null unique,
    password_hash  text not null,
    display_name   text not null,
    role           text not null check (role in ('admin', 'hq_strategist', 'coo', 'city_manager', 'agent')),
    city_id        text references city (id),
    team_id        text references team (id),
    home_lat       double precision,
    home_lon       double precision,
    created_at     timestamptz not null default now(),
    check (role not in ('city_manager', 'agent') or city_id is not null),
    check (role <> 'agent' or team_id is not null)
);
create index app_user_team_idx on app_user (team_id);

-- territory_id is derived from the location; no foreign key so a territory set can be replaced
create table account (
    id            text primary key,
    name          text not null,
    lat           double precision not null,
    lon           double precision not null,
    city_id       text not null references city (id),
    territory_id  text,
    owner_id      text references app_user (id),
    attributes    jsonb not null default '{}',
    created_at    timestamptz not null default now(),
    updated_at    timestamptz not null default now()
);
create index account_city_territory_idx on account (city_id, territory_id);

create table directive (
    id             text primary key,
    name           text not null,
    rule_id        text,
    rule_version   integer,
    status         text not null default 'pending'
                   check (status in ('pending', 'dispatched', 'cancelled', 'failed')),
    target         jsonb not null,
    task_template  jsonb not null,
    assignment     text not null,
    created_by     text not null references app_user (id),
    created_at     timestamptz not null default now(),
    dispatched_at  timestamptz,
    cancelled_at   timestamptz,
    task_total     integer not null default 0,
    skipped        jsonb not null default '[]',
    error          text
);
create index directive_pending_idx on directive (created_at) where status = 'pending';
create index directive_created_idx on directive (created_at desc, id desc);

create table task (
    id              text primary key,
    directive_id    text not null references directive (id),
    rule_id         text,
    city_id         text not null references city (id),
    territory_id    text,
    team_id         text not null references team (id),
    account_id      text references account (id),
    assignee_id     text references app_user (id),
    status          text not null
                    check (status in ('queued', 'delivered', 'accepted', 'checked_in', 'completed', 'rejected', 'cancelled')),
    priority        text not null,
    title           text not null,
    instructions    text not null,
    form            jsonb not null,
    require_checkin boolean not null,
    due_at          timestamptz not null,
    created_at      timestamptz not null default now(),
    updated_at      timestamptz not null default now(),
    queued_at       timestamptz not null default now(),
    delivered_at    timestamptz,
    accepted_at     timestamptz,
    checked_in_at   timestamptz,
    completed_at    timestamptz,
    rejected_at     timestamptz,
    cancelled_at    timestamptz,
    reject_reason   text,
    checkin_lat     double precision,
    checkin_lon     double precision,
    checkin_distance_m double precision
);
-- exactly one task per (directive, account), and one per (directive, team) without an account
create unique index task_directive_account_uq on task (directive_id, account_id) where account_id is not null;
create unique index task_directive_team_uq on task (directive_id, team_id) where account_id is null;
create index task_city_status_idx on task (city_id, status);
create index task_assignee_idx on task (assignee_id, status);
create index task_team_pool_idx on task (team_id, status) where assignee_id is null;
create index task_directive_idx on task (directive_id, city_id, status);

-- per-directive, per-city, per-status counts maintained by the dispatcher's feedback consumer
create table directive_count (
    directive_id  text not null references directive (id),
    city_id       text not null,
    status        text not null,
    n             bigint not null default 0,
    primary key (directive_id, city_id, status)
);

create table photo (
    id            text primary key,
    city_id       text references city (id),
    uploader_id   text not null references app_user (id),
    content_type  text not null,
    bytes         bytea not null,
    created_at    timestamptz not null default now()
);

create table report (
    id            text primary key,
    kind          text not null check (kind in ('completion', 'intel', 'issue')),
    task_id       text references task (id),
    directive_id  text references directive (id),
    rule_id       text,
    city_id       text not null references city (id),
    territory_id  text,
    author_id     text not null references app_user (id),
    answers       jsonb,
    text          text,
    tags          text[] not null default '{}',
    lat           double precision,
    lon           double precision,
    photo_ids     text[] not null default '{}',
    created_at    timestamptz not null default now()
);
create index report_created_idx on report (created_at desc, id desc);
create index report_directive_idx on report (directive_id);
create index report_city_idx on report (city_id, created_at desc);
create unique index report_completion_uq on report (task_id) where kind = 'completion';

create table escalation (
    id           text primary key,
    report_id    text not null references report (id),
    city_id      text not null references city (id),
    status       text not null default 'open' check (status in ('open', 'answered')),
    answer       text,
    answered_by  text references app_user (id),
    answered_at  timestamptz,
    created_at   timestamptz not null default now()
);

-- transactional outbox: written in the same transaction as the change it announces,
-- moved to Redis Streams by the dispatcher's relay, deleted once XADD succeeded
create table outbox (
    id          bigserial primary key,
    stream      text not null,
    payload     jsonb not null,
    created_at  timestamptz not null default now()
);

create function outbox_notify() returns trigger language plpgsql as $$
begin
    perform pg_notify('fieldops_outbox', '');
    return null;
end $$;
create trigger outbox_notify after insert on outbox for each statement execute function outbox_notify();

create function directive_notify() returns trigger language plpgsql as $$
begin
    perform pg_notify('fieldops_directive', '');
    return null;
end $$;
create trigger directive_notify after insert on directive for each statement execute function directive_notify();

-- messages a consumer has applied; makes redelivery harmless
create table processed_message (
    consumer      text not null,
    message_id    text not null,
    processed_at  timestamptz not null default now(),
    primary key (consumer, message_id)
);

create table idempotency_key (
    user_id          text not null,
    key              text not null,
    request_hash     text not null,
    response_status  smallint not null,
    response_body    jsonb not null,
    created_at       timestamptz not null default now(),
    primary key (user_id, key)
);

create table audit_event (
    id           bigserial primary key,
    at           timestamptz not null default now(),
    actor_id     text,
    action       text not null,
    object_type  text not null,
    object_id    text not null,
    city_id      text,
    detail       jsonb not null default '{}'
);
create index audit_object_idx on audit_event (object_type, object_id);
