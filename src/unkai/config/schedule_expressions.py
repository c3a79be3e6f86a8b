"""EventBridge schedule expressions: `rate(5 minutes)` and six-field `cron(...)`
(https://docs.aws.amazon.com/scheduler/latest/UserGuide/schedule-types.html).

AWS cron fields are `minutes hours day-of-month month day-of-week year`; one of day-of-month and
day-of-week must be `?`; day-of-week counts 1-7 from Sunday (or SUN-SAT). croniter counts
0-6 from Sunday and has no year field, so the expression is translated once and the year is
checked on each next time (jumping to the next year it allows). `W` (nearest weekday) and `L`
in day-of-week are not supported and say so.
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

    def next_after(self, moment: dt.datetime) -> dt.datetime | None:
        """The first run strictly after `moment` (aware), in UTC; None when there is none."""
        return next_run(self.expression, self.timezone, moment)


def validate(expression: str, timezone: str = "UTC") -> None:
    """Raise ScheduleError naming the problem."""
    try:
        zone = zoneinfo.ZoneInfo(timezone)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise ScheduleError(f"unknown time zone {timezone!r}") from None
    if next_run(expression, timezone, dt.datetime.now(zone)) is None:
        raise ScheduleError(f"{expression}: it has no run in the future")


def next_run(expression: str, timezone: str, moment: dt.datetime) -> dt.datetime | None:
    """The first run strictly after `moment`, in UTC; None when the year field allows none."""
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
    start = moment.astimezone(zone)
    for _ in range(200):  # years to look through, at most
        try:
            candidate: dt.datetime = croniter(spec, start).get_next(dt.datetime)
        except (ValueError, KeyError) as exc:
            raise ScheduleError(f"{expression}: {exc}") from None
        if _year_matches(year, candidate.year):
            return candidate.astimezone(dt.UTC)
        following = _next_year(year, candidate.year)
        if following is None:
            return None
        # Jump to just before the next year the field allows, instead of stepping there.
        start = dt.datetime(following, 1, 1, tzinfo=zone) - dt.timedelta(seconds=1)
    return None


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
    if "L" in field.upper():
        raise ScheduleError(f"{expression}: 'L' in day-of-week is not supported")

    def shift(match: re.Match[str]) -> str:
        number = int(match.group(0))
        if not 1 <= number <= 7:
            raise ScheduleError(f"{expression}: day-of-week must be 1-7 or SUN-SAT, got {number}")
        return str(number - 1)

    items = []
    for item in field.split(","):
        head, sep, nth = item.partition("#")  # `6#3`: the third Friday; the 3 is not a day
        items.append(re.sub(r"\d+", shift, head) + sep + nth)
    return ",".join(items)


#: The years a cron expression may name (AWS: 1970-2199). Bounded, so a year range costs
#: at most 230 entries however it is written.
FIRST_YEAR = 1970
LAST_YEAR = 2199


def _years(field: str) -> list[int] | None:
    """The years a field allows (None: every year), from `2027`, `2026-2028`, `2026/2`,
    `2026-2030/2` and lists of them, up to 2199 (AWS's limit)."""
    if field == "*":
        return None
    years: set[int] = set()
    for part in field.split(","):
        span, _, step = part.partition("/")
        low, _, high = span.partition("-")
        if span == "*":
            low, high = str(FIRST_YEAR), str(LAST_YEAR)
        if not low.isdigit() or (high and not high.isdigit()) or (step and not step.isdigit()):
            raise ScheduleError(f"year field {field!r} is not years, ranges or steps")
        first = int(low)
        last = int(high) if high else (LAST_YEAR if step else first)
        if not FIRST_YEAR <= first <= LAST_YEAR or not FIRST_YEAR <= last <= LAST_YEAR:
            raise ScheduleError(
                f"year field {field!r}: years must be between {FIRST_YEAR} and {LAST_YEAR}"
            )
        if step and int(step) == 0:
            raise ScheduleError(f"year field {field!r}: a step must be at least 1")
        years.update(range(first, last + 1, int(step) if step else 1))
    return sorted(years)


def _year_matches(field: str, year: int) -> bool:
    allowed = _years(field)
    return allowed is None or year in allowed


def _next_year(field: str, after: int) -> int | None:
    allowed = _years(field)
    if allowed is None:
        return after + 1
    return next((year for year in allowed if year > after), None)
