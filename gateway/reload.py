"""Re-reading the configuration while running (SIGHUP, ``POST /admin/reload``,
``fixbridge reload``): what may change, decided from the two configurations alone.

What QuickFIX 1.16 allows, and so what a reload can do:

* A running acceptor never gains or loses a session: ``Acceptor::initialize`` creates every
  session from the settings once, at construction, and the binding has no call to add or remove
  one (no dynamic sessions or acceptor templates in QuickFIX C++). What it does allow is another
  acceptor. So **added sessions** get a new SocketAcceptor of their own, on its own loopback
  port, and the front routes their CompIDs there; the running acceptor and its sessions are not
  touched.
* **Removed sessions** are logged out (Logout 58 says why) and their Logons refused from then on
  as an unknown CompID; QuickFIX keeps the session object (and its store) until the process
  exits. Adding the CompID back later in the same process re-admits that same session, as long
  as what QuickFIX was told about it (BeginString, ResetOnLogon, ValidateFieldsHaveValues,
  schedule) is unchanged; otherwise that needs a restart.
* In a session that stays, the settings the gateway reads at each logon or use may change:
  ``auth``, ``username``, ``password_hash``, ``heartbeat_min``/``heartbeat_max``,
  ``cancel_on_disconnect``, ``rfq_rate``, ``cert_identity``. QuickFIX reads the rest when it
  creates the session (``reset_on_logon``, ``validate_fields_have_values``, ``schedule``,
  ``begin_string``), and ``risk`` and ``throttle`` are built into the order core at start: a
  change to any of those needs a restart.
* Every other section (listeners, database, data directory, TLS, API tokens, OTC, clearing,
  venue, risk, logon lock-out) needs a restart.
* A schedule in a time zone other than the one the process was started with needs a restart
  (QuickFIX 1.16 reads zoned schedules in the process's local time).

A reload is all or nothing: if anything needs a restart, nothing is applied and the refusal
names every key.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from gateway.config import Config, SessionConfig

# Session fields the gateway reads at each logon or use, so a reload may change them
LIVE_SESSION_FIELDS = frozenset(
    {
        "auth",
        "username",
        "password_hash",
        "heartbeat_min",
        "heartbeat_max",
        "cancel_on_disconnect",
        "rfq_rate",
        "cert_identity",
    }
)


class ReloadRefused(Exception):
    """The new configuration changes something only a restart can; nothing was applied."""


@dataclass
class ReloadPlan:
    added: list[SessionConfig] = field(default_factory=list)  # need a new acceptor
    readmitted: list[SessionConfig] = field(default_factory=list)  # still in the engine
    removed: list[str] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)  # live session fields, as keys
    refused: list[str] = field(default_factory=list)

    def refusal(self) -> str:
        return (
            "the configuration changes what only a restart can; nothing was applied: "
            + "; ".join(self.refused)
        )


def _differences(old: Any, new: Any, key: str) -> list[str]:
    if isinstance(old, dict) and isinstance(new, dict):
        found = []
        for k in sorted(set(old) | set(new), key=str):
            found += _differences(old.get(k), new.get(k), f"{key}.{k}" if key else str(k))
        return found
    return [] if old == new else [key]


def plan(
    running: Config,
    new: Config,
    engine_sessions: Mapping[str, Mapping[str, str]],
    process_zone: str | None,
    engine_settings,
) -> ReloadPlan:
    """What reloading ``new`` over ``running`` would do. ``engine_sessions``: the settings
    QuickFIX was given for every session it has (including ones removed since);
    ``process_zone``: the time zone the process runs in for zoned schedules (None: not set);
    ``engine_settings``: SessionConfig -> those settings."""
    result = ReloadPlan()
    others = _differences(
        running.model_dump(mode="json", exclude={"sessions"}),
        new.model_dump(mode="json", exclude={"sessions"}),
        "",
    )
    result.refused += [f"{key} changed" for key in others]
    old = {s.comp_id: s for s in running.sessions}
    for s in new.sessions:
        before = old.get(s.comp_id)
        if before is None:
            created = engine_sessions.get(s.comp_id)
            if created is None:
                result.added.append(s)
            elif dict(created) == dict(engine_settings(s)):
                result.readmitted.append(s)
            else:
                result.refused.append(
                    f"sessions[{s.comp_id}] was removed earlier in this process and comes back "
                    "with different engine settings (begin_string, reset_on_logon, "
                    "validate_fields_have_values or schedule)"
                )
            continue
        diff = _differences(before.model_dump(mode="json"), s.model_dump(mode="json"), "")
        for key in diff:
            top = key.split(".")[0]
            if top in LIVE_SESSION_FIELDS:
                result.changed.append(f"sessions[{s.comp_id}].{key}")
            else:
                result.refused.append(f"sessions[{s.comp_id}].{key} changed")
    new_ids = {s.comp_id for s in new.sessions}
    result.removed = [c for c in old if c not in new_ids]
    if new.time_zone is not None and new.time_zone != process_zone:
        result.refused.append(
            f"schedule time zone {new.time_zone} differs from the process's "
            f"({process_zone or 'not set: UTC schedules only'}), set at start"
        )
    return result
