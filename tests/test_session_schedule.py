"""Session schedules: the configuration, its mapping onto QuickFIX's own settings, and real
logons inside and outside a window computed from the current time (so the test does not
depend on when it runs)."""

from __future__ import annotations

import time
import zoneinfo
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from gateway.config import WEEKDAYS, ConfigError, ScheduleSection, load_config
from gateway.fix.acceptor import schedule_settings
from gateway.schedule import day_refusal, trading_day, window_opened_on
from load.fixclient import FixClient
from tests.conftest import connect
from tests.harness import API_TOKEN, GatewayProcess

# --- configuration ------------------------------------------------------------------------

BASE = "[[sessions]]\ncomp_id = 'A'\n[sessions.schedule]\n"
BAD = [
    ("start = '25:00:00'\n", "sessions[0].schedule.start", "expected a time of day HH:MM:SS"),
    ("end = '8:00'\n", "sessions[0].schedule.end", "HH:MM:SS"),
    ("time_zone = 'Mars/Olympus'\n", "sessions[0].schedule.time_zone", "unknown time zone"),
    ("start_day = 'Sun'\n", "sessions[0].schedule", "start_day and end_day go together"),
    (
        "start_day = 'Sun'\nend_day = 'Fri'\ndays = ['Mon']\n",
        "sessions[0].schedule",
        "days is for daily sessions",
    ),
    ("days = []\n", "sessions[0].schedule", "at least one weekday"),
    ("days = ['Mon', 'Mon']\n", "sessions[0].schedule", "names a weekday twice"),
    ("days = ['Monday']\n", "sessions[0].schedule.days[0]", "'Mon', 'Tue'"),
    ("weekdays = ['Mon']\n", "sessions[0].schedule.weekdays", "Extra inputs are not permitted"),
]


@pytest.mark.parametrize(("text", "key", "problem"), BAD)
def test_bad_schedules_name_file_key_and_problem(tmp_path, text, key, problem):
    path = tmp_path / "bad.toml"
    path.write_text(BASE + text)
    with pytest.raises(ConfigError) as err:
        load_config(path)
    message = str(err.value)
    assert f"{path}: {key}: " in message and problem in message, message


def test_zoned_schedules_must_share_one_zone(tmp_path):
    path = tmp_path / "zones.toml"
    path.write_text(
        BASE + "time_zone = 'Europe/London'\n"
        "[[sessions]]\ncomp_id = 'B'\n[sessions.schedule]\ntime_zone = 'America/New_York'\n"
        "[[sessions]]\ncomp_id = 'C'\n[sessions.schedule]\ntime_zone = 'UTC'\n"
    )
    with pytest.raises(ConfigError) as err:
        load_config(path)
    assert "Europe/London (A), America/New_York (B)" in str(err.value)
    assert "QuickFIX 1.16 has no per-session TimeZone" in str(err.value)


def test_schedules_map_onto_quickfix_settings():
    assert schedule_settings(None) == {"StartTime": "00:00:00", "EndTime": "00:00:00"}
    daily = ScheduleSection(
        start="08:00:00", end="17:00:00", time_zone="Europe/London", days=["Mon", "Fri"]
    )
    assert schedule_settings(daily) == {
        "StartTime": "08:00:00",
        "EndTime": "17:00:00",
        "UseLocalTime": "Y",
    }  # days: the gateway's own check
    weekly = ScheduleSection(start_day="Sun", start="22:00:00", end_day="Fri", end="22:00:00")
    assert schedule_settings(weekly) == {
        "StartTime": "22:00:00",
        "EndTime": "22:00:00",
        "UseLocalTime": "N",
        "StartDay": "Sun",
        "EndDay": "Fri",
    }
    assert weekly.describe() == "Sun 22:00:00 to Fri 22:00:00 UTC"
    assert daily.describe() == "08:00:00-17:00:00 daily on Mon,Fri Europe/London"


def test_days_belong_to_the_day_a_window_opened():
    overnight = ScheduleSection(start="22:00:00", end="06:00:00", days=["Mon"])
    monday_night = datetime(2026, 1, 5, 23, 0, tzinfo=UTC)  # 2026-01-05 is a Monday
    tuesday_early = datetime(2026, 1, 6, 3, 0, tzinfo=UTC)
    tuesday_night = datetime(2026, 1, 6, 23, 0, tzinfo=UTC)
    assert window_opened_on(overnight, tuesday_early) == "Mon"
    assert day_refusal(overnight, monday_night) is None
    assert day_refusal(overnight, tuesday_early) is None
    assert "Tue is not one of them" in day_refusal(overnight, tuesday_night)
    zoned = ScheduleSection(start="08:00:00", end="17:00:00", time_zone="Asia/Tokyo", days=["Tue"])
    assert day_refusal(zoned, datetime(2026, 1, 6, 1, 0, tzinfo=UTC)) is None  # Tue 10:00 JST
    whole_day = ScheduleSection(start="08:00:00", end="08:00:00", days=["Tue"])
    assert day_refusal(whole_day, tuesday_early) is None  # QuickFIX renews it at midnight
    assert day_refusal(ScheduleSection(), tuesday_night) is None
    assert day_refusal(None, tuesday_night) is None


def test_the_trading_day_rolls_at_the_schedule_start_or_utc_midnight():
    late = datetime(2026, 1, 5, 23, 30, tzinfo=UTC)  # Monday
    assert trading_day(None, late).isoformat() == "2026-01-05"
    assert trading_day(None, late + timedelta(hours=1)).isoformat() == "2026-01-06"
    overnight = ScheduleSection(start="22:00:00", end="06:00:00")
    assert trading_day(overnight, datetime(2026, 1, 5, 21, 59, tzinfo=UTC)).isoformat() == (
        "2026-01-04"
    )
    assert trading_day(overnight, datetime(2026, 1, 5, 22, 0, tzinfo=UTC)).isoformat() == (
        "2026-01-05"
    )
    assert trading_day(overnight, datetime(2026, 1, 6, 5, 0, tzinfo=UTC)).isoformat() == (
        "2026-01-05"
    )
    tokyo = ScheduleSection(start="08:00:00", end="17:00:00", time_zone="Asia/Tokyo")
    # 2026-01-05 23:30 UTC is Tuesday 08:30 in Tokyo
    assert trading_day(tokyo, late).isoformat() == "2026-01-06"
    weekly = ScheduleSection(start_day="Sun", start="22:00:00", end_day="Fri", end="22:00:00")
    assert trading_day(weekly, late).isoformat() == "2026-01-05"  # days roll at 22:00


# --- real logons --------------------------------------------------------------------------


def _hms(t: datetime) -> str:
    return t.strftime("%H:%M:%S")


def _schedules(now: datetime) -> str:
    london = now.astimezone(zoneinfo.ZoneInfo("Europe/London"))
    opened = WEEKDAYS[(now - timedelta(hours=1)).weekday()]  # the IN window opened an hour ago
    other_days = [d for d in WEEKDAYS if d != opened]
    yesterday, tomorrow = (
        WEEKDAYS[(now - timedelta(days=1)).weekday()],
        WEEKDAYS[(now + timedelta(days=1)).weekday()],
    )
    later1, later2 = (
        WEEKDAYS[(now + timedelta(days=1)).weekday()],
        WEEKDAYS[(now + timedelta(days=2)).weekday()],
    )

    def session(comp_id: str, **schedule: object) -> str:
        lines = [f'\n[[sessions]]\ncomp_id = "{comp_id}"\n[sessions.schedule]']
        for key, value in schedule.items():
            lines.append(f"{key} = {value!r}".replace("'", '"'))
        return "\n".join(lines) + "\n"

    return "".join(
        [
            session(
                "OUT", start=_hms(now + timedelta(hours=2)), end=_hms(now + timedelta(hours=3))
            ),
            session(
                "IN_LONDON",
                start=_hms(london - timedelta(hours=1)),
                end=_hms(london + timedelta(hours=1)),
                time_zone="Europe/London",
            ),
            session(
                "DAY_OFF",
                start=_hms(now - timedelta(hours=1)),
                end=_hms(now + timedelta(hours=1)),
                days=other_days,
            ),
            session(
                "DAY_ON",
                start=_hms(now - timedelta(hours=1)),
                end=_hms(now + timedelta(hours=1)),
                days=[opened],
            ),
            session(
                "WEEK_IN", start_day=yesterday, start=_hms(now), end_day=tomorrow, end=_hms(now)
            ),
            session("WEEK_OUT", start_day=later1, start=_hms(now), end_day=later2, end=_hms(now)),
            session(
                "ENDING",
                start=_hms(now - timedelta(hours=1)),
                end=_hms(now + timedelta(seconds=20)),
            ),
        ]
    )


@pytest.fixture(scope="module")
def scheduled(tmp_path_factory):
    gw = GatewayProcess(
        tmp_path_factory.mktemp("sched"), extra=_schedules(datetime.now(UTC))
    ).start()
    yield gw
    assert gw.stop() == 0, gw.stderr()


def _refused(gw, comp_id: str) -> str:
    c = FixClient("127.0.0.1", gw.fix_port, comp_id, "FIXBRIDGE")
    reply = c.logon()
    assert reply.msg_type == "5", (comp_id, reply.fields)
    assert c.closed()
    return reply.get(58) or ""


def test_a_session_logs_on_inside_its_window_and_is_refused_outside(scheduled):
    assert _refused(scheduled, "OUT").startswith("outside the session schedule (")
    assert "outside the session schedule" in _refused(scheduled, "WEEK_OUT")
    for comp_id in ("IN_LONDON", "DAY_ON", "WEEK_IN"):
        connect(scheduled, comp_id).logout()
    assert "no session today" in _refused(scheduled, "DAY_OFF")
    views = {
        v["comp_id"]: v
        for v in httpx.get(
            f"{scheduled.http}/sessions", headers={"Authorization": f"Bearer {API_TOKEN}"}
        ).json()
    }
    assert {
        c: views[c]["in_session"]
        for c in ("OUT", "IN_LONDON", "DAY_OFF", "DAY_ON", "WEEK_IN", "WEEK_OUT", "CLIENT2")
    } == {
        "OUT": False,
        "IN_LONDON": True,
        "DAY_OFF": False,
        "DAY_ON": True,
        "WEEK_IN": True,
        "WEEK_OUT": False,
        "CLIENT2": True,
    }
    assert views["IN_LONDON"]["schedule"].endswith("daily Europe/London")
    assert views["CLIENT2"]["schedule"] is None
    # refusals by the schedule are not failed logons
    assert "locked out" not in scheduled.stderr()


def test_the_end_of_the_window_logs_the_session_out_with_text(scheduled):
    c = connect(scheduled, "ENDING")
    deadline = time.monotonic() + 40
    while True:
        msg = c.recv(timeout=max(0.1, deadline - time.monotonic()))
        if msg.msg_type == "5":
            break
        if msg.msg_type == "1":  # a TestRequest while we wait: answer it
            c.send("0", [(112, msg.get(112))])
    assert msg.get(58).startswith("outside the session schedule (")
