"""Session schedules: the part the gateway checks itself.

QuickFIX runs the schedule's window (StartTime/EndTime, StartDay/EndDay, UseLocalTime; see
:func:`gateway.fix.acceptor.schedule_settings`). QuickFIX 1.16 has no Weekdays setting, so a
daily schedule's ``days`` is checked here, at logon: pure logic with the time passed in. The
schedule also sets each client's trading day, within which its ClOrdIDs must be unique.
"""

from __future__ import annotations

import zoneinfo
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta

from gateway.config import WEEKDAYS, Config, ScheduleSection


def trading_day(schedule: ScheduleSection | None, now: datetime) -> date:
    """The trading day ``now`` belongs to, within which a client's ClOrdIDs must be unique: the
    date, in the schedule's zone, on which the day's window opened (the day rolls at the
    schedule's ``start`` time; a weekly schedule's days roll at its ``start`` time too), or the
    UTC date without a schedule."""
    if schedule is None:
        return now.astimezone(UTC).date()
    local = now.astimezone(zoneinfo.ZoneInfo(schedule.time_zone))
    opened = local.date()
    if schedule.start != schedule.end and local.time() < schedule.start_time():
        opened -= timedelta(days=1)
    return opened


def trading_days(config: Callable[[], Config]) -> Callable[[str, datetime], date]:
    """The order core's trading day of each client, from its session's schedule in the
    configuration ``config()`` returns now (a reload may add sessions). Asked on every order:
    schedules are looked up once per client and configuration."""
    schedules: dict[str, ScheduleSection | None] = {}
    current: list[Config | None] = [None]

    def day(owner: str, now: datetime) -> date:
        cfg = config()
        if cfg is not current[0]:
            schedules.clear()
            current[0] = cfg
        if owner not in schedules:
            session = cfg.session(owner)
            schedules[owner] = session.schedule if session is not None else None
        schedule = schedules[owner]
        if schedule is None:
            return now.astimezone(UTC).date()
        return trading_day(schedule, now)

    return day


def window_opened_on(schedule: ScheduleSection, now: datetime) -> str:
    """The weekday (``Mon``..``Sun``, in the schedule's zone) on which the daily window that
    contains ``now`` (or that ``now`` would fall in) opened: today if the start time has passed,
    else yesterday (an overnight window such as 22:00-06:00 belongs to the day it opened). With
    start = end the window is the whole day: QuickFIX (TimeRange::isInSameRange) renews such a
    session when the date changes, whatever the start time."""
    return WEEKDAYS[trading_day(schedule, now).weekday()]


def day_refusal(schedule: ScheduleSection | None, now: datetime) -> str | None:
    """``None`` if ``days`` allows a logon at ``now``, else the Logout text refusing it."""
    if schedule is None or schedule.days is None or schedule.weekly:
        return None
    day = window_opened_on(schedule, now)
    if day in schedule.days:
        return None
    return f"no session today: the schedule is {schedule.describe()} ({day} is not one of them)"
