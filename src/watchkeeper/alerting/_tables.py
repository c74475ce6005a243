"""Metadata tables of alerting: rules from the API, alert state, history, silences, outbox.

Declared on the shared `METADATA`; `MetaStore.create_all` creates them. JSON columns are
text so SQLite and PostgreSQL read them the same way.
"""

from __future__ import annotations

import sqlalchemy as sa

from watchkeeper.store.meta import METADATA

alert_rules = sa.Table(
    "alert_rules",
    METADATA,
    sa.Column("project", sa.String(200), primary_key=True),
    sa.Column("id", sa.String(120), primary_key=True),
    sa.Column("data", sa.Text, nullable=True),  # the rule as JSON; NULL: only `enabled` is set
    sa.Column("enabled", sa.Boolean, nullable=True),  # overrides the rule's own flag
    sa.Column("deleted", sa.Boolean, nullable=False, default=False),  # hides a config rule
    sa.Column("updated_at", sa.Float, nullable=False),
)

alert_state = sa.Table(
    "alert_state",
    METADATA,
    sa.Column("fingerprint", sa.String(32), primary_key=True),
    sa.Column("rule_id", sa.String(120), nullable=False, index=True),
    sa.Column("project", sa.String(200), nullable=False),
    sa.Column("labels", sa.Text, nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("pending_since", sa.Float),
    sa.Column("firing_since", sa.Float),
    sa.Column("last_breach_at", sa.Float),
    sa.Column("resolved_at", sa.Float),
    sa.Column("last_notified_at", sa.Float),
    sa.Column("value", sa.Float),
    sa.Column("threshold", sa.Float),
    sa.Column("trace_ids", sa.Text, nullable=False, default="[]"),
)

alert_history = sa.Table(
    "alert_history",
    METADATA,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("at", sa.Float, nullable=False, index=True),
    sa.Column("project", sa.String(200), nullable=False, index=True),
    sa.Column("rule_id", sa.String(120), nullable=False),
    sa.Column("fingerprint", sa.String(32), nullable=False),
    sa.Column("event", sa.String(16), nullable=False),  # firing, resolved, repeat
    sa.Column("severity", sa.String(16), nullable=False),
    sa.Column("labels", sa.Text, nullable=False),
    sa.Column("value", sa.Float),
    sa.Column("threshold", sa.Float),
    sa.Column("muted", sa.String(200)),  # why it was not notified (silence, inhibited, cap)
)

silences = sa.Table(
    "alert_silences",
    METADATA,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column("project", sa.String(200), nullable=False, index=True),
    sa.Column("matchers", sa.Text, nullable=False),
    sa.Column("starts_at", sa.Float, nullable=False),
    sa.Column("ends_at", sa.Float, nullable=False),
    sa.Column("comment", sa.Text, nullable=False, default=""),
    sa.Column("created_by", sa.String(200), nullable=False, default=""),
    sa.Column("created_at", sa.Float, nullable=False),
)

outbox = sa.Table(
    "alert_outbox",
    METADATA,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("project", sa.String(200), nullable=False, index=True),
    sa.Column("channel", sa.String(200), nullable=False),
    sa.Column("rule_id", sa.String(120), nullable=False),
    sa.Column("fingerprint", sa.String(32), nullable=False),
    sa.Column("notification", sa.Text, nullable=False),  # Notification as JSON
    sa.Column("state", sa.String(16), nullable=False, index=True),  # pending, delivered, ...
    sa.Column("attempts", sa.Integer, nullable=False, default=0),
    sa.Column("next_attempt_at", sa.Float, nullable=False),
    sa.Column("last_error", sa.Text),
    sa.Column("delivered_at", sa.Float),
)

attempts = sa.Table(
    "alert_delivery_attempts",
    METADATA,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("outbox_id", sa.Integer, nullable=False, index=True),
    sa.Column("at", sa.Float, nullable=False),
    sa.Column("channel", sa.String(200), nullable=False),
    sa.Column("result", sa.String(16), nullable=False),  # ok, retry, failed
    sa.Column("error", sa.Text),
    sa.Column("duration_ms", sa.Float, nullable=False),
)

lease = sa.Table(
    "alert_lease",
    METADATA,
    sa.Column("name", sa.String(64), primary_key=True),
    sa.Column("holder", sa.String(200), nullable=False),
    sa.Column("expires_at", sa.Float, nullable=False),
)
