"""The emulator's clock: wall time plus an offset that tests move forward, so
that timers (token expiry, the 1 h rotate limit, 30 s enable, 4 h purge,
30 d restore) run without anyone waiting for them."""
import datetime
import threading
import time


class Clock:
    def __init__(self):
        self._offset = 0.0
        self._lock = threading.Lock()

    def now(self):
        """Seconds since the epoch, as the emulator sees them."""
        with self._lock:
            return time.time() + self._offset

    def advance(self, seconds):
        if seconds < 0:
            raise ValueError("the clock only moves forward")
        with self._lock:
            self._offset += seconds


def iso(t):
    """RFC 3339 in UTC to the second, as Key Protect writes dates."""
    return datetime.datetime.fromtimestamp(int(t), datetime.timezone.utc).strftime(
        "%Y-%m-%dT%H:%M:%SZ")


def parse_iso(text):
    """The inverse of iso(); ValueError on anything else."""
    dt = datetime.datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ")
    return dt.replace(tzinfo=datetime.timezone.utc).timestamp()
