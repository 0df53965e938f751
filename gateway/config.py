"""Configuration: one TOML file, validated on load.

Validation is pydantic's; errors are reported as ``FILE: KEY: PROBLEM`` so an operator sees at
once what to fix. Paths in the file are relative to the working directory, as on the command line.
"""

from __future__ import annotations

import re
import tomllib
import zoneinfo
from datetime import time
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from fixspec.instruments import InstrumentError, parse_symbol
from gateway.passwords import is_password_hash

EXAMPLE_CONFIG = Path(__file__).with_name("example.toml")


class ConfigError(Exception):
    """A configuration problem, already phrased for the operator."""


def _hostport(value: str) -> str:
    host, sep, port = value.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ValueError(f"expected HOST:PORT, got {value!r}")
    return value


HostPort = Annotated[str, Field(description="HOST:PORT")]
CompId = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.\-]+$")]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class GatewaySection(Strict):
    comp_id: CompId = "FIXBRIDGE"
    fix_listen: HostPort = "127.0.0.1:9876"
    http_listen: HostPort = "127.0.0.1:8000"
    data_dir: Path = Path("./var")
    database_url: str = ""
    fix_message_log: bool = True
    fix_plain: bool = True  # the plain TCP FIX listener; turn off to accept TLS only
    http_enabled: bool = True
    # SIGTERM: refuse new business, finish what is in flight, log sessions out, flush, exit 0
    # within this many seconds (otherwise say what was left and exit 1)
    drain_seconds: float = Field(default=10.0, gt=0, le=600)

    _check_fix = field_validator("fix_listen", "http_listen")(_hostport)

    @field_validator("database_url")
    @classmethod
    def _db_url(cls, value: str) -> str:
        if value and not value.startswith(("sqlite:", "postgresql")):
            raise ValueError("must be a sqlite:/// or postgresql:// URL (or empty for the default)")
        return value


class TlsSection(Strict):
    """FIX over TLS 1.2+ with client certificates bound to CompIDs."""

    enabled: bool = False
    fix_listen: HostPort = "127.0.0.1:9877"
    certs_dir: Path | None = None  # default <data_dir>/certs, as `fixbridge certs init` makes it

    _check_listen = field_validator("fix_listen")(_hostport)


class HaSection(Strict):
    """Active/standby: gateways on one data directory and one PostgreSQL database; the one
    holding a PostgreSQL advisory lock leads, the others wait as standbys (gateway/ha.py)."""

    enabled: bool = False
    # the lock key is derived from this name (two pairs on one database need different names)
    cluster: str = Field(default="fixbridge", min_length=1, max_length=64)
    lock_key: int | None = Field(default=None, ge=-(2**63), lt=2**63)  # explicit key instead
    poll_seconds: float = Field(default=0.5, gt=0, le=60)  # a standby tries for the lock
    check_seconds: float = Field(default=0.5, gt=0, le=60)  # the leader confirms it holds it
    # the leader stops at once when its lock is gone or unconfirmed for this long; a new
    # leader waits this long after taking the lock before it touches the data directory
    lease_seconds: float = Field(default=1.5, gt=0, le=600)

    @model_validator(mode="after")
    def _lease(self) -> HaSection:
        if self.lease_seconds <= self.check_seconds:
            raise ValueError("lease_seconds must be longer than check_seconds")
        return self


class ClearingSection(Strict):
    """Where captured trades go for clearing."""

    mode: Literal["off", "simulator", "http", "file"] = "simulator"
    url: str = ""  # mode http: the clearinghouse base URL (POST /clearing/messages)
    verify_tls: bool = True
    drop_dir: Path | None = None  # mode file: the directory the clearinghouse picks up from
    # official XSD root: `fixbridge clearing validate` and the built-in simulator check against it
    schema_dir: Path | None = None
    simulator_reject_above: Decimal | None = None  # simulator rule: refuse larger quantities
    clearing_house: CompId = "CCP"  # PartyRole 21 on every submission
    clearing_firm: CompId | None = None  # PartyRole 4 (the client's clearing member)
    # GET /ready fails while more messages than this await the clearinghouse's answer
    max_backlog: int = Field(default=100, ge=0)

    @model_validator(mode="after")
    def _complete(self) -> ClearingSection:
        if self.mode == "http" and not self.url.startswith(("http://", "https://")):
            raise ValueError("mode 'http' needs url = 'https://...'")
        if self.mode == "file" and self.drop_dir is None:
            raise ValueError("mode 'file' needs drop_dir")
        if self.schema_dir is not None and not self.schema_dir.is_dir():
            raise ValueError(f"schema_dir {str(self.schema_dir)!r} is not a directory")
        return self


class TradesSection(Strict):
    """Corrections and busts of captured trades."""

    # a correction or bust proposed by one admin takes effect when a different admin approves it
    second_approver: bool = False


class ApiToken(Strict):
    name: str = Field(min_length=1)
    hash: str = Field(pattern=r"^sha256\$[0-9a-f]{64}$")
    # "metrics": GET /metrics and nothing else (a Prometheus scraper's token)
    role: Literal["admin", "desk", "compliance", "client-viewer", "metrics"] = "admin"
    desk_id: CompId | None = None  # required for role "desk": the desk this token acts for

    @model_validator(mode="after")
    def _desk(self) -> ApiToken:
        if (self.role == "desk") != (self.desk_id is not None):
            raise ValueError("desk_id is required for role 'desk' and only for it")
        return self


class DeskProtectionSection(Strict):
    """Market maker protection of one desk: trip after ``max_fills`` fills or ``max_notional``
    traded (quantity x |price|, quote currency) within ``window_ms`` of acceptance times."""

    window_ms: int = Field(ge=1)
    max_fills: int | None = Field(default=None, ge=1)
    max_notional: Decimal | None = Field(default=None, gt=0)

    @model_validator(mode="after")
    def _some_limit(self) -> DeskProtectionSection:
        if self.max_fills is None and self.max_notional is None:
            raise ValueError("set max_fills, max_notional or both")
        return self


class OtcSection(Strict):
    """RFQ negotiation: lifetimes, last look, desk protections and client disclosure."""

    rfq_ttl_seconds: int = Field(default=300, ge=1)
    max_rfq_ttl_seconds: int = Field(default=3600, ge=1)
    last_look_max_hold_ms: int = Field(default=2000, ge=1)
    send_cover: bool = True
    desks: list[CompId] = Field(default_factory=list)
    # client CompID (or "*") -> instrument kind (option, future, perpetual, spot or "*") -> desks
    routing: dict[str, dict[str, list[str]]] = Field(default_factory=dict)
    # desk id (or "*" for every desk not named) -> its market maker protection
    protection: dict[str, DeskProtectionSection] = Field(default_factory=dict)
    # desks whose live quotes are pulled when their last desk stream closes
    cancel_on_disconnect: list[CompId] = Field(default_factory=list)
    # whether an RFQ that does not say shows desks the client's id (false: a per-RFQ alias)
    disclose_clients: bool = True

    @model_validator(mode="after")
    def _known_desks(self) -> OtcSection:
        for where, named in (
            ("protection", set(self.protection) - {"*"}),
            ("cancel_on_disconnect", set(self.cancel_on_disconnect)),
        ):
            unknown = named - set(self.desks)
            if unknown:
                raise ValueError(f"{where} names desks not in otc.desks: {sorted(unknown)}")
        for client, kinds in self.routing.items():
            for kind, desks in kinds.items():
                unknown = set(desks) - set(self.desks)
                if unknown:
                    raise ValueError(
                        f"routing.{client}.{kind} names desks not in otc.desks: {sorted(unknown)}"
                    )
        if self.rfq_ttl_seconds > self.max_rfq_ttl_seconds:
            raise ValueError("rfq_ttl_seconds exceeds max_rfq_ttl_seconds")
        return self


class ApiSection(Strict):
    tokens: list[ApiToken] = Field(default_factory=list)
    # HTTPS: both set, the API serves TLS only (e.g. the dev PKI's server.pem / server.key)
    tls_cert: Path | None = None
    tls_key: Path | None = None
    max_body_bytes: int = Field(default=1_048_576, ge=1024)
    # each desk's token bucket over its API requests (none: unlimited; the stream is exempt)
    desk_requests_per_second: int | None = Field(default=None, ge=1)
    desk_request_burst: int | None = Field(default=None, ge=1)  # default: one second's worth
    # /docs, /redoc and /openapi.json without a token (they describe routes, not data); false
    # puts them behind any valid token
    docs_public: bool = True

    @model_validator(mode="after")
    def _pair(self) -> ApiSection:
        if (self.tls_cert is None) != (self.tls_key is None):
            raise ValueError("tls_cert and tls_key go together")
        return self


class LogonSection(Strict):
    max_failures: int = Field(default=5, ge=1)
    window_seconds: int = Field(default=300, ge=1)
    lockout_seconds: int = Field(default=300, ge=1)


class UpstreamSection(Strict):
    """An upstream FIX 4.4 venue reached through a QuickFIX initiator (``[venue] kind = "fix"``).

    The password is never in this file: ``password_env`` names an environment variable, or
    ``password_file`` a file, that holds it (checked before start-up)."""

    host: str = Field(min_length=1)
    port: int = Field(ge=1, le=65535)
    sender_comp_id: CompId  # our CompID on the upstream session
    target_comp_id: CompId  # the venue's
    username: str | None = None  # Username(553) on our Logon
    password_env: str | None = Field(default=None, pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")
    password_file: Path | None = None
    # TLS 1.2+ through QuickFIX's own SSL initiator: the venue's certificate must chain to
    # tls_ca_file; tls_cert_file/tls_key_file: our client certificate, if the venue asks for one
    tls: bool = False
    tls_ca_file: Path | None = None
    tls_cert_file: Path | None = None
    tls_key_file: Path | None = None
    heartbeat_seconds: int = Field(default=30, ge=1, le=3600)
    reconnect_seconds: int = Field(default=5, ge=1, le=3600)
    store_dir: Path | None = None  # default <data_dir>/venue: QuickFIX's store and our routes

    @model_validator(mode="after")
    def _credentials(self) -> UpstreamSection:
        if self.password_env is not None and self.password_file is not None:
            raise ValueError("password_env and password_file are alternatives; set one")
        if (self.password_env or self.password_file) and not self.username:
            raise ValueError("a password needs a username (Username 553 on the Logon)")
        files = (self.tls_ca_file, self.tls_cert_file, self.tls_key_file)
        if not self.tls and any(f is not None for f in files):
            raise ValueError("tls_ca_file, tls_cert_file and tls_key_file are for tls = true")
        if self.tls and self.tls_ca_file is None:
            raise ValueError("tls = true needs tls_ca_file (the venue's certificate authority)")
        if (self.tls_cert_file is None) != (self.tls_key_file is None):
            raise ValueError("tls_cert_file and tls_key_file go together")
        return self


class VenueSection(Strict):
    kind: Literal["simulated", "fix"] = "simulated"
    depth: Decimal = Field(default=Decimal(10), gt=0)
    # simulated: the market; fix: the reference for risk checks (price bands, market orders)
    reference_prices: dict[str, Decimal] = Field(default_factory=dict)
    fix: UpstreamSection | None = None

    @model_validator(mode="after")
    def _upstream(self) -> VenueSection:
        if self.kind == "fix" and self.fix is None:
            raise ValueError("kind = 'fix' needs a [venue.fix] section (host, port, CompIDs)")
        if self.kind != "fix" and self.fix is not None:
            raise ValueError("[venue.fix] is only used with kind = 'fix'")
        return self

    @field_validator("reference_prices")
    @classmethod
    def _symbols(cls, prices: dict[str, Decimal]) -> dict[str, Decimal]:
        out = {}
        for symbol, price in prices.items():
            try:
                canonical = parse_symbol(symbol).symbol
            except InstrumentError as exc:
                raise ValueError(str(exc)) from exc
            if not price.is_finite():
                raise ValueError(f"{symbol}: price must be a finite number")
            out[canonical] = price
        return out


class RiskSection(Strict):
    max_order_qty: Decimal | None = Field(default=None, gt=0)
    max_notional: Decimal | None = Field(default=None, gt=0)
    price_band: Decimal | None = Field(default=None, gt=0, lt=1)  # 0.05 = ±5 % of reference
    credit_limit: Decimal | None = Field(default=None, gt=0)


class ThrottleSection(Strict):
    """Application messages per second on one session."""

    reject_above: int = Field(default=500, ge=1)
    logout_above: int = Field(default=2000, ge=1)

    @model_validator(mode="after")
    def _ordered(self) -> ThrottleSection:
        if self.logout_above < self.reject_above:
            raise ValueError("logout_above must not be below reject_above")
        return self


WEEKDAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
Weekday = Literal["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"]


def _clock(value: str) -> str:
    if not re.fullmatch(r"([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9]", value):
        raise ValueError(f"expected a time of day HH:MM:SS (00:00:00 to 23:59:59), got {value!r}")
    return value


ClockTime = Annotated[str, AfterValidator(_clock), Field(description="HH:MM:SS")]


class ScheduleSection(Strict):
    """When a session may be logged on, as QuickFIX's own StartTime/EndTime (daily) or
    StartDay/StartTime to EndDay/EndTime (weekly). Outside the window QuickFIX refuses logons
    and logs a logged-on session out; a new window starts with sequence numbers reset.

    ``time_zone``: an IANA zone, default UTC. QuickFIX 1.16 has no TimeZone setting: a zoned
    schedule is UseLocalTime=Y with the gateway process's time zone set to that zone, so every
    zoned session in one configuration must use the same zone. ``days``: the weekdays on which a
    daily window opens; QuickFIX 1.16 has no Weekdays setting either, so the gateway's logon
    check enforces it (QuickFIX still runs the window on the other days)."""

    start: ClockTime = "00:00:00"
    end: ClockTime = "00:00:00"
    time_zone: str = "UTC"
    days: list[Weekday] | None = None
    start_day: Weekday | None = None
    end_day: Weekday | None = None

    @field_validator("time_zone")
    @classmethod
    def _zone(cls, value: str) -> str:
        try:
            zoneinfo.ZoneInfo(value)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            raise ValueError(
                f"unknown time zone {value!r} (expected an IANA name such as "
                "'Europe/London', or 'UTC')"
            ) from None
        return value

    @model_validator(mode="after")
    def _shape(self) -> ScheduleSection:
        if (self.start_day is None) != (self.end_day is None):
            raise ValueError("start_day and end_day go together (a weekly session)")
        if self.days is not None:
            if self.start_day is not None:
                raise ValueError(
                    "days is for daily sessions; a weekly session runs from start_day to end_day"
                )
            if not self.days:
                raise ValueError("days must name at least one weekday")
            if len(set(self.days)) != len(self.days):
                raise ValueError("days names a weekday twice")
        return self

    @property
    def weekly(self) -> bool:
        return self.start_day is not None

    @property
    def utc(self) -> bool:
        return self.time_zone in ("UTC", "Etc/UTC")

    def start_time(self) -> time:
        return time.fromisoformat(self.start)

    def describe(self) -> str:
        if self.weekly:
            span = f"{self.start_day} {self.start} to {self.end_day} {self.end}"
        else:
            span = f"{self.start}-{self.end} daily"
            if self.days:
                span += " on " + ",".join(self.days)
        return f"{span} {self.time_zone}"


class SessionConfig(Strict):
    comp_id: CompId
    begin_string: Literal["FIX.4.4"] = "FIX.4.4"
    reset_on_logon: bool = True
    heartbeat_min: int = Field(default=1, ge=1)
    heartbeat_max: int = Field(default=120, ge=1)
    auth: Literal["none", "password"] = "none"
    username: str | None = None
    password_hash: str | None = None
    validate_fields_have_values: bool = True
    # The identity (certificate CN or SAN) that may log on as this CompID over TLS; default comp_id.
    cert_identity: str | None = None
    risk: RiskSection | None = None
    throttle: ThrottleSection = Field(default_factory=ThrottleSection)
    cancel_on_disconnect: bool = False
    rfq_rate: int = Field(default=20, ge=1)  # RFQs per second this client may send
    schedule: ScheduleSection | None = None  # none: always in session (00:00:00-00:00:00)

    @model_validator(mode="after")
    def _consistent(self) -> SessionConfig:
        if self.heartbeat_min > self.heartbeat_max:
            raise ValueError("heartbeat_min is greater than heartbeat_max")
        if self.auth == "password":
            if not self.username:
                raise ValueError("auth = 'password' needs a username")
            if not self.password_hash or not is_password_hash(self.password_hash):
                raise ValueError(
                    "auth = 'password' needs password_hash from `fixbridge hash-password` "
                    "(plain passwords are not accepted)"
                )
        return self


class DropCopySection(Strict):
    """A session that receives a copy of every ExecutionReport and TradeCaptureReport sent to
    ``clients`` and may send nothing but TradeCaptureReportRequests (gateway/fix/drop_copy.py)."""

    clients: list[CompId] = Field(min_length=1)


class FixSection(Strict):
    """FIX roles beyond a plain client session; ``drop_copy`` is keyed by the session's CompID."""

    drop_copy: dict[str, DropCopySection] = Field(default_factory=dict)


class Config(Strict):
    gateway: GatewaySection = Field(default_factory=GatewaySection)
    tls: TlsSection = Field(default_factory=TlsSection)
    ha: HaSection = Field(default_factory=HaSection)
    otc: OtcSection = Field(default_factory=OtcSection)
    clearing: ClearingSection = Field(default_factory=ClearingSection)
    trades: TradesSection = Field(default_factory=TradesSection)
    api: ApiSection = Field(default_factory=ApiSection)
    logon: LogonSection = Field(default_factory=LogonSection)
    venue: VenueSection = Field(default_factory=VenueSection)
    risk: RiskSection = Field(default_factory=RiskSection)
    fix: FixSection = Field(default_factory=FixSection)
    sessions: list[SessionConfig] = Field(min_length=1)

    @model_validator(mode="after")
    def _unique_sessions(self) -> Config:
        if not self.gateway.fix_plain and not self.tls.enabled:
            raise ValueError("gateway.fix_plain is off and tls.enabled is false: no FIX listener")
        seen: set[str] = set()
        for s in self.sessions:
            if s.comp_id in seen:
                raise ValueError(f"session {s.comp_id!r} is configured twice")
            if s.comp_id == self.gateway.comp_id:
                raise ValueError(f"session {s.comp_id!r} uses the gateway's own CompID")
            seen.add(s.comp_id)
        zones = {
            s.schedule.time_zone: s.comp_id
            for s in self.sessions
            if s.schedule is not None and not s.schedule.utc
        }
        if len(zones) > 1:
            named = ", ".join(f"{zone} ({comp_id})" for zone, comp_id in zones.items())
            raise ValueError(
                f"sessions use different schedule time zones: {named}. QuickFIX 1.16 has no "
                "per-session TimeZone: zoned schedules use the process's local time, so all "
                "must share one zone (or use UTC)"
            )
        return self

    @model_validator(mode="after")
    def _drop_copies(self) -> Config:
        """A drop copy must be a configured session that keeps its sequence numbers across
        logons (its copies wait in QuickFIX's store for the ResendRequest), copying sessions
        that exist and are not drop copies themselves."""
        problems = []
        for comp_id, section in self.fix.drop_copy.items():
            key = f"fix.drop_copy.{comp_id}"
            session = self.session(comp_id)
            if session is None:
                problems.append(f"{key}: {comp_id} is not a [[sessions]] comp_id")
            elif session.reset_on_logon:
                problems.append(
                    f"{key}: session {comp_id} needs reset_on_logon = false (a reset on logon "
                    "would discard the copies sent while it was logged off)"
                )
            unknown = [c for c in section.clients if self.session(c) is None]
            if unknown:
                problems.append(f"{key}.clients: not [[sessions]] comp_ids: {unknown}")
            copies = [c for c in section.clients if c in self.fix.drop_copy]
            if copies:
                problems.append(f"{key}.clients: drop copy sessions cannot be copied: {copies}")
        if problems:
            raise ValueError("; ".join(problems))
        return self

    @model_validator(mode="after")
    def _ha_needs_postgresql(self) -> Config:
        if self.ha.enabled and not self.gateway.database_url.startswith("postgresql"):
            raise ValueError(
                "ha.enabled needs a postgresql:// gateway.database_url: "
                "leadership is a PostgreSQL advisory lock (no standby on SQLite)"
            )
        return self

    @property
    def time_zone(self) -> str | None:
        """The zone every zoned session schedule uses (the process's local time), if any."""
        return next(
            (
                s.schedule.time_zone
                for s in self.sessions
                if s.schedule is not None and not s.schedule.utc
            ),
            None,
        )

    @property
    def database_url(self) -> str:
        return self.gateway.database_url or f"sqlite:///{self.gateway.data_dir / 'fixbridge.db'}"

    @property
    def certs_dir(self) -> Path:
        return self.tls.certs_dir or self.gateway.data_dir / "certs"

    @property
    def venue_dir(self) -> Path:
        """Where an upstream venue's QuickFIX store and our routes to it are kept."""
        upstream = self.venue.fix
        return (upstream.store_dir if upstream else None) or self.gateway.data_dir / "venue"

    def session(self, comp_id: str) -> SessionConfig | None:
        return next((s for s in self.sessions if s.comp_id == comp_id), None)

    def with_data_dir(self, data_dir: Path) -> Config:
        return self.model_copy(
            update={"gateway": self.gateway.model_copy(update={"data_dir": data_dir})}
        )


def _key(loc: tuple) -> str:
    parts: list[str] = []
    for item in loc:
        if isinstance(item, int):
            parts[-1:] = [f"{parts[-1]}[{item}]"] if parts else [f"[{item}]"]
        else:
            parts.append(str(item))
    return ".".join(parts) or "(top level)"


def load_config(path: Path) -> Config:
    """Read and validate ``path``; raises :class:`ConfigError` naming file, key and problem."""
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise ConfigError(f"{path}: file not found") from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read: {exc}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from exc
    try:
        return Config.model_validate(raw)
    except ValidationError as exc:
        lines = [f"{path}: {_key(err['loc'])}: {err['msg']}" for err in exc.errors()]
        raise ConfigError("\n".join(lines)) from exc
