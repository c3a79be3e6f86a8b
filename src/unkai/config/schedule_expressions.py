"""EventBridge schedule expressions: `rate(5 minutes)` and six-field `cron(...)`
(https://docs.aws.amazon.com/scheduler/latest/UserGuide/schedule-types.html).

AWS cron fields are `minutes hours day-of-month month day-of-week year`; one of day-of-month and
day-of-week must be `?`; day-of-week counts 1-7 from Sunday (or SUN-SAT). croniter counts
0-6 from Sunday and has no year field, so the expression is translated once and the year is
checked on each next time. `W` (nearest weekday) is not supported and says so.
"""

from __future__ import annotations

import datetime as dt
import re
import zoneinfo
from dataclasses import dataclass

from croniter import croniter

_RATE = re.compile(r"^rate\((\d+) (minute|minutes|hour|hours|day|days)\)$")
_CRON = re.compile(r"^cron\((.+)\)$")
_UNITS = {"minute": 60, "hour": 3600, "day": 86400}


class ScheduleError(ValueError):
    """An expression AWS would refuse; the message says what is wrong."""


@dataclass(frozen=True, slots=True)
class Schedule:
    expression: str
    timezone: str = "UTC"

    def next_after(self, moment: dt.datetime) -> dt.datetime:
        """The first run strictly after `moment` (aware), in UTC."""
        return next_run(self.expression, self.timezone, moment)


def validate(expression: str, timezone: str = "UTC") -> None:
    """Raise ScheduleError naming the problem."""
    try:
        zone = zoneinfo.ZoneInfo(timezone)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise ScheduleError(f"unknown time zone {timezone!r}") from None
    next_run(expression, timezone, dt.datetime(2026, 1, 1, tzinfo=zone))


def next_run(expression: str, timezone: str, moment: dt.datetime) -> dt.datetime:
    rate = _RATE.match(expression)
    if rate is not None:
        count, unit = int(rate.group(1)), rate.group(2)
        if count < 1:
            raise ScheduleError(f"{expression}: the value must be a positive integer")
        if (count == 1) != (not unit.endswith("s")):
            raise ScheduleError(
                f"{expression}: say '1 {unit.rstrip('s')}' or '{count} {unit.rstrip('s')}s'"
            )
        return moment.astimezone(dt.UTC) + dt.timedelta(seconds=count * _UNITS[unit.rstrip("s")])
    cron = _CRON.match(expression)
    if cron is None:
        raise ScheduleError(
            f"{expression!r} is neither 'rate(N minutes|hours|days)' nor 'cron(6 fields)'"
        )
    minutes, hours, dom, month, dow, year = _fields(expression, cron.group(1))
    zone = zoneinfo.ZoneInfo(timezone)
    spec = f"{minutes} {hours} {_star(dom)} {month} {_dow(dow, expression)}"
    try:
        times = croniter(spec, moment.astimezone(zone))
    except (ValueError, KeyError) as exc:
        raise ScheduleError(f"{expression}: {exc}") from None
    for _ in range(10_000):
        candidate: dt.datetime = times.get_next(dt.datetime)
        if _year_matches(year, candidate.year):
            return candidate.astimezone(dt.UTC)
    raise ScheduleError(f"{expression}: no run in the years it names")


def _fields(expression: str, body: str) -> list[str]:
    fields = body.split()
    if len(fields) != 6:
        raise ScheduleError(
            f"{expression}: cron needs 6 fields (minutes hours day-of-month month day-of-week "
            f"year), got {len(fields)}"
        )
    dom, dow = fields[2], fields[4]
    if (dom == "?") == (dow == "?"):
        raise ScheduleError(f"{expression}: one of day-of-month and day-of-week must be '?'")
    if "W" in dom.upper():
        raise ScheduleError(f"{expression}: 'W' (nearest weekday) is not supported")
    return fields


def _star(field: str) -> str:
    return "*" if field == "?" else field


_DAY_NAMES = {"SUN": 0, "MON": 1, "TUE": 2, "WED": 3, "THU": 4, "FRI": 5, "SAT": 6}


def _dow(field: str, expression: str) -> str:
    """AWS 1-7 (Sunday = 1) to croniter 0-6 (Sunday = 0); names pass through."""
    if field == "?":
        return "*"

    def shift(match: re.Match[str]) -> str:
        number = int(match.group(0))
        if not 1 <= number <= 7:
            raise ScheduleError(f"{expression}: day-of-week must be 1-7 or SUN-SAT, got {number}")
        return str(number - 1)

    head, sep, nth = field.partition("#")  # `6#3`: the third Friday; the 3 is not a day
    return re.sub(r"\d+", shift, head) + sep + nth


def _year_matches(field: str, year: int) -> bool:
    if field == "*":
        return True
    for part in field.split(","):
        low, _, high = part.partition("-")
        if low.isdigit() and (int(low) <= year <= int(high or low)):
            return True
    return False
