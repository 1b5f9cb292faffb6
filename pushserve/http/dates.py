"""HTTP dates (RFC 9110 §5.6.7): formatting, parsing, and a once-a-second Date header."""

from __future__ import annotations

import time

_DAYS = (b"Mon", b"Tue", b"Wed", b"Thu", b"Fri", b"Sat", b"Sun")
_MONTHS = (b"Jan", b"Feb", b"Mar", b"Apr", b"May", b"Jun",
           b"Jul", b"Aug", b"Sep", b"Oct", b"Nov", b"Dec")
_MONTH_NUMBER = {m.lower(): i + 1 for i, m in enumerate(_MONTHS)}
_LONG_DAYS = {b"monday", b"tuesday", b"wednesday", b"thursday", b"friday", b"saturday", b"sunday"}


def http_date(ts: float) -> bytes:
    """IMF-fixdate for a POSIX timestamp: b"Sun, 06 Nov 1994 08:49:37 GMT"."""
    t = time.gmtime(ts)
    return b"%s, %02d %s %04d %02d:%02d:%02d GMT" % (
        _DAYS[t.tm_wday], t.tm_mday, _MONTHS[t.tm_mon - 1], t.tm_year, t.tm_hour, t.tm_min, t.tm_sec)


def _clock(value: bytes) -> tuple[int, int, int] | None:
    parts = value.split(b":")
    if len(parts) != 3 or not all(len(p) == 2 and p.isdigit() for p in parts):
        return None
    h, m, s = (int(p) for p in parts)
    if h > 23 or m > 59 or s > 60:  # 60: a leap second, which timegm folds into the next minute
        return None
    return h, m, s


def _timestamp(year: int, month: int | None, day: bytes, clock: bytes) -> float | None:
    if month is None or year < 1 or not day.isdigit() or len(day) > 2:
        return None
    hms = _clock(clock)
    if hms is None:
        return None
    d = int(day)
    if not 1 <= d <= _month_days(year, month):
        return None
    h, m, s = hms
    return float(_days_since_epoch(year, month, d) * 86400 + h * 3600 + m * 60 + s)


# calendar's monthrange and timegm, without the module (it imports locale and datetime).
def _month_days(year: int, month: int) -> int:
    if month == 2:
        return 29 if year % 4 == 0 and (year % 100 != 0 or year % 400 == 0) else 28
    return 30 if month in (4, 6, 9, 11) else 31


def _days_since_epoch(year: int, month: int, day: int) -> int:
    """Days from 1970-01-01 to a proleptic Gregorian date (negative before it)."""
    y = year - (month <= 2)  # count from March, so the leap day ends a year
    era, yoe = divmod(y, 400)
    doy = (153 * (month + (-3 if month > 2 else 9)) + 2) // 5 + day - 1
    doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
    return era * 146097 + doe - 719468


def parse_http_date(value: bytes) -> float | None:
    """POSIX timestamp for an HTTP-date, or None when it is not one.

    Recipients must accept all three forms RFC 9110 lists: IMF-fixdate, the obsolete RFC 850
    form, and asctime().
    """
    parts = value.strip().split()
    try:
        if len(parts) == 6 and parts[5] == b"GMT":  # Sun, 06 Nov 1994 08:49:37 GMT
            day_name, day, mon, year, clock = parts[0], parts[1], parts[2], parts[3], parts[4]
            if not day_name.endswith(b",") or len(year) != 4 or not year.isdigit():
                return None
            return _timestamp(int(year), _MONTH_NUMBER.get(mon.lower()), day, clock)
        if len(parts) == 4 and parts[3] == b"GMT":  # Sunday, 06-Nov-94 08:49:37 GMT
            if parts[0].rstrip(b",").lower() not in _LONG_DAYS:
                return None
            dmy = parts[1].split(b"-")
            if len(dmy) != 3 or len(dmy[2]) != 2 or not dmy[2].isdigit():
                return None
            # Two-digit years: RFC 9110 says read them as the most recent matching past year;
            # a fixed 1970 pivot is close enough for a format nobody has sent since the 1990s.
            yy = int(dmy[2])
            full_year = 1900 + yy if yy >= 70 else 2000 + yy
            return _timestamp(full_year, _MONTH_NUMBER.get(dmy[1].lower()), dmy[0], parts[2])
        if len(parts) == 5:  # Sun Nov  6 08:49:37 1994
            if len(parts[4]) != 4 or not parts[4].isdigit():
                return None
            return _timestamp(int(parts[4]), _MONTH_NUMBER.get(parts[1].lower()), parts[2], parts[3])
    except ValueError:
        return None
    return None


class DateHeader:
    """The value of the Date header, formatted at most once per second.

    Every response carries a Date, so formatting it per response would be wasted work; the
    value only changes once a second anyway.
    """

    __slots__ = ("_second", "_value")

    def __init__(self) -> None:
        self._second = -1
        self._value = b""

    def value(self, now: float | None = None) -> bytes:
        """The current Date value; pass ``now`` (time.time()) when the caller already has it."""
        second = int(time.time() if now is None else now)
        if second != self._second:
            self._second = second
            self._value = http_date(second)
        return self._value
