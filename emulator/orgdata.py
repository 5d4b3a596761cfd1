"""A synthetic organisation, generated from a seed, from which IP statistics are *computed*.

The model: a few thousand devices (most onboarded before the 30-day horizon, some during it) make
network connections to remote IPs. Remote IPs are ranked by popularity with a Zipf-like law: rank 0
(`10.209.67.177`, the documentation's example, an internal server) is contacted by ~90 % of the
devices, the long tail by one or two. Popular addresses are mostly internal (10/8, 172.16/12,
192.168/16, fd00::/8); the tail mixes in public IPv4 and IPv6, some of which first appeared only
days ago.

Statistics follow the API's definition: prevalence = distinct devices that connected to the IP
within the look-back window; first/last seen = earliest/latest connection in that window.

Event times are 100-ns ticks relative to an *anchor* (the calendar time the emulator started at, or
the pinned time), so one generated organisation serves any anchor. Each IP's history is generated on
first use from its own seeded generator and memoised (a sorted array of event ticks, the parallel
device ids, and the sorted per-device latest tick), so a query is a couple of bisections. Nothing is
a stored answer: change the look-back, the clock or the seed and the figures follow.
"""

from __future__ import annotations

import bisect
import functools
import random
import threading
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from emulator.addresses import canonical_ip, ipv4_text, ipv6_text, is_public_v4

TICKS_PER_SECOND = 10_000_000
HOUR_TICKS = 3600 * TICKS_PER_SECOND
HORIZON_HOURS = 720
HORIZON_TICKS = HORIZON_HOURS * HOUR_TICKS
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
EXAMPLE_IP = "10.209.67.177"
_DEVICE_BITS = 13  # device ids < 8192
_DEVICE_MASK = (1 << _DEVICE_BITS) - 1

_IPV6_PUBLIC_PREFIXES = (0x2603_1000, 0x2a00_1450, 0x2606_4700, 0x2a03_2880, 0x2620_01ec, 0x2a01_0111)


def to_ticks(moment: datetime) -> int:
    """Exact 100-ns ticks since the Unix epoch (no float rounding)."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return (moment - EPOCH) // timedelta(microseconds=1) * 10


def from_ticks(ticks: int) -> datetime:
    """A datetime for a tick count, truncated to the microsecond (datetime's resolution)."""
    return EPOCH + timedelta(microseconds=ticks // 10)


@dataclass(frozen=True)
class IpHistory:
    times: list[int]        # event ticks relative to the anchor (<= 0), ascending
    devices: list[int]      # device id of each event, parallel to times
    device_last: list[int]  # each device's latest event tick, ascending


@dataclass(frozen=True)
class IpStats:
    """Statistics for one IP and window; tick values are absolute (since the Unix epoch)."""

    ip: str
    prevalence: int
    first_seen_ticks: int | None
    last_seen_ticks: int | None

    @property
    def first_seen(self) -> datetime | None:
        return None if self.first_seen_ticks is None else from_ticks(self.first_seen_ticks)

    @property
    def last_seen(self) -> datetime | None:
        return None if self.last_seen_ticks is None else from_ticks(self.last_seen_ticks)


class OrgData:
    """The seed-determined organisation, independent of any clock (relative ticks only)."""

    def __init__(self, seed: int, ip_count: int = 20_000) -> None:
        self.seed = seed
        rng = random.Random(f"mde-emulator/org/{seed}")
        self.device_count = 3000 + rng.randrange(2000)  # < 2 ** _DEVICE_BITS
        # Most devices were onboarded before the horizon; ~15 % during it.
        self.device_since = [
            -HORIZON_TICKS if rng.random() < 0.85 else -rng.randrange(HORIZON_TICKS)
            for _ in range(self.device_count)
        ]
        self.ips: list[str] = []
        self.rank: dict[str, int] = {}
        self._add(EXAMPLE_IP)
        while len(self.ips) < ip_count:
            self._add(self._draw_ip(rng, len(self.ips)))
        self._history: dict[int, IpHistory] = {}
        self._lock = threading.Lock()

    def _add(self, ip: str) -> None:
        if ip not in self.rank:
            self.rank[ip] = len(self.ips)
            self.ips.append(ip)

    @staticmethod
    def _draw_ip(rng: random.Random, rank: int) -> str:
        """Popular destinations are mostly internal servers; the tail mixes in the Internet."""
        internal = 0.9 if rank < 100 else 0.5
        roll = rng.random()
        if roll < internal * 0.9:
            pick = rng.random()
            if pick < 0.65:
                return f"10.{rng.randrange(256)}.{rng.randrange(256)}.{rng.randrange(1, 255)}"
            if pick < 0.85:
                return f"172.{rng.randrange(16, 32)}.{rng.randrange(256)}.{rng.randrange(1, 255)}"
            return f"192.168.{rng.randrange(256)}.{rng.randrange(1, 255)}"
        if roll < internal:
            return ipv6_text((0xFD << 120) | rng.getrandbits(120))
        if roll < internal + (1 - internal) * 0.8:
            while True:
                value = rng.getrandbits(32)
                if is_public_v4(value):
                    return ipv4_text(value)
        prefix = rng.choice(_IPV6_PUBLIC_PREFIXES)
        return ipv6_text((prefix << 96) | rng.getrandbits(96))

    def history(self, rank: int) -> IpHistory:
        found = self._history.get(rank)
        if found is None:
            found = self._generate(rank)
            with self._lock:
                found = self._history.setdefault(rank, found)
        return found

    def _generate(self, rank: int) -> IpHistory:
        rng = random.Random(f"mde-emulator/org/{self.seed}/ip/{rank}")
        share = min(0.95, 0.9 / (rank + 1) ** 0.85 * rng.uniform(0.85, 1.15))
        device_n = max(1, round(self.device_count * share))
        mean_events = 1.0 + 20.0 / (rank + 1) ** 0.5
        # Some tail destinations appeared only recently (a new C2, a new SaaS endpoint...).
        ip_since = -HORIZON_TICKS if rank < 200 or rng.random() < 0.7 else -rng.randrange(1, HORIZON_TICKS)
        # Each event is packed as tick * 8192 + device so that one integer sort orders them.
        packed: list[int] = []
        append = packed.append
        rand = rng.random
        rate = 1.0 / mean_events
        for device in rng.sample(range(self.device_count), device_n):
            since = max(self.device_since[device], ip_since)
            span = 1 - since
            for _ in range(1 + int(rng.expovariate(rate))):
                append(((since + int(rand() * span)) << _DEVICE_BITS) | device)
        packed.sort()
        last: dict[int, int] = {}
        times: list[int] = []
        devices: list[int] = []
        for value in packed:
            tick, device = value >> _DEVICE_BITS, value & _DEVICE_MASK
            times.append(tick)
            devices.append(device)
            last[device] = tick
        return IpHistory(times=times, devices=devices, device_last=sorted(last.values()))

    def warm(self, top: int = 200) -> None:
        """Generate the most popular IPs' histories ahead of the first queries (benchmarks)."""
        for rank in range(min(top, len(self.ips))):
            self.history(rank)


@functools.lru_cache(maxsize=8)
def org_data(seed: int) -> OrgData:
    """Organisations are immutable once generated: share one per seed within a process."""
    return OrgData(seed)


class Organisation:
    """An organisation placed on a calendar: `anchor` is the moment its data ends."""

    def __init__(self, data: OrgData, anchor: datetime, now: object = None) -> None:
        self.data = data
        self.anchor = anchor
        self.anchor_ticks = to_ticks(anchor)
        self._now = now  # a zero-argument callable giving the emulated calendar time

    @property
    def seed(self) -> int:
        return self.data.seed

    @property
    def device_count(self) -> int:
        return self.data.device_count

    def now(self) -> datetime:
        return self._now() if callable(self._now) else self.anchor

    def stats_detail(self, ip: str, lookback_hours: int = HORIZON_HOURS,
                     now: datetime | None = None) -> IpStats:
        """The computation behind the API: raises ValueError for a bad IP or look-back."""
        if isinstance(lookback_hours, bool) or not isinstance(lookback_hours, int):
            raise ValueError("lookback_hours must be an int")
        if not 1 <= lookback_hours <= HORIZON_HOURS:
            raise ValueError(f"lookback_hours must be 1..{HORIZON_HOURS}")
        key = canonical_ip(str(ip))
        rank = self.data.rank.get(key)
        if rank is None:
            return IpStats(key, 0, None, None)
        history = self.data.history(rank)
        end = to_ticks(now if now is not None else self.now()) - self.anchor_ticks
        start = end - lookback_hours * HOUR_TICKS
        times = history.times
        lo = bisect.bisect_left(times, start)
        if end >= 0:  # the usual case: every event is at or before `now`
            hi = len(times)
            prevalence = len(history.device_last) - bisect.bisect_left(history.device_last, start)
        else:  # a `now` inside the data's span: count distinct devices the slow way
            hi = bisect.bisect_right(times, end)
            prevalence = len(set(history.devices[lo:hi]))
        if lo >= hi:
            return IpStats(key, 0, None, None)
        return IpStats(key, prevalence, times[lo] + self.anchor_ticks, times[hi - 1] + self.anchor_ticks)

    def stats(self, ip: str, lookback_hours: int = HORIZON_HOURS,
              now: datetime | None = None) -> tuple[int, datetime | None, datetime | None]:
        """(prevalence, first_seen, last_seen) as the API computes them; datetimes to the microsecond."""
        found = self.stats_detail(ip, lookback_hours, now)
        return found.prevalence, found.first_seen, found.last_seen

    def sample_ips(self, n: int, seen: bool = True, now: datetime | None = None) -> list[str]:
        """Deterministic sample of IPs: seen (prevalence > 0 in the last 720 h) or never seen."""
        if n < 0:
            raise ValueError("n must be >= 0")
        rng = random.Random(f"mde-emulator/org/{self.seed}/sample/{seen}")
        found: list[str] = []
        if seen:
            ranks = list(range(len(self.data.ips)))
            rng.shuffle(ranks)
            for rank in ranks:
                if len(found) == n:
                    break
                ip = self.data.ips[rank]
                if self.stats_detail(ip, HORIZON_HOURS, now).prevalence > 0:
                    found.append(ip)
            if len(found) < n:
                raise ValueError(f"only {len(found)} IPs are seen in the window")
            return found
        chosen: set[str] = set()
        while len(found) < n:
            ip = OrgData._draw_ip(rng, 10_000)
            if ip not in self.data.rank and ip not in chosen:
                chosen.add(ip)
                found.append(ip)
        return found

    def most_popular(self, n: int = 10) -> list[str]:
        return self.data.ips[:n]
