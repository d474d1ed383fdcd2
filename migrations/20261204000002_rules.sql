-- strategy rules: versions, firings (one per rule and occurrence), report-trigger state,
-- and the last completed visit of an account (for days_since_visit)

create table rule (
    id            text primary key,
    version       integer not null default 1,
    name          text not null,
    enabled       boolean not null default true,
    trigger_kind  text not null check (trigger_kind in ('manual', 'cron', 'report')),
    body          jsonb not null,
    -- cron rules: the next occurrence the scheduler will consider
    cron_next_at  timestamptz,
    created_by    text not null references app_user (id),
    created_at    timestamptz not null default now(),
    updated_at    timestamptz not null default now(),
    deleted_at    timestamptz
);
create index rule_cron_due_idx on rule (cron_next_at) where trigger_kind = 'cron' and enabled and deleted_at is null;

create table rule_version (
    rule_id     text not null references rule (id),
    version     integer not null,
    body        jsonb not null,
    created_by  text not null references app_user (id),
    created_at  timestamptz not null default now(),
    primary key (rule_id, version)
);

-- one row per rule and firing key (a cron occurrence's local wall-clock time, a report group's
-- window); the primary key makes each fire once even with several dispatchers
create table rule_firing (
    rule_id        text not null references rule (id),
    firing_key     text not null,
    occurrence_at  timestamptz not null,
    status         text not null check (status in ('fired', 'skipped')),
    directive_id   text references directive (id),
    reason         text,
    created_at     timestamptz not null default now(),
    primary key (rule_id, firing_key)
);

-- reports that matched a report-triggered rule, per group (territory or city)
create table rule_report_match (
    rule_id      text not null references rule (id),
    group_key    text not null,
    report_id    text not null references report (id),
    reported_at  timestamptz not null,
    primary key (rule_id, report_id)
);
create index rule_report_match_window_idx on rule_report_match (rule_id, group_key, reported_at);

-- the last firing per report-rule group (locked while deciding to fire)
create table rule_group_state (
    rule_id         text not null references rule (id),
    group_key       text not null,
    last_fired_at   timestamptz,
    primary key (rule_id, group_key)
);

alter table account add column last_visit_at timestamptz;

-- the attributes accounts carry, with their JSON type: the names rule filters may use
create table account_attribute (
    key   text primary key,
    ty    text not null check (ty in ('string', 'number', 'boolean'))
);
insert into account_attribute (key, ty)
select key, min(jsonb_typeof(value)) from account, jsonb_each(attributes)
where jsonb_typeof(value) in ('string', 'number', 'boolean') group by key
on conflict do nothing;
