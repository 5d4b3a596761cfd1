"""How long the second search's 300 cache reads take on each backend the result cache could use.

    .venv-siem/bin/python tests/splunk_siem/measure_cache_backends.py [--redis-url redis://127.0.0.1:PORT/0]

- SQLite: the core's SqliteStateStore in the search head's state directory (what the add-on uses).
- Redis: the core's RedisStateStore (what a search-head cluster uses), when a Redis URL is given.
- KV store: splunkd's REST API (storage/collections/data) through splunklib, as a command would call it:
  one GET per key, and one batched GET with a {"_key": {"$in": [...]}} query. The fake splunkd answers
  from memory, so these figures are a lower bound: a real splunkd adds its own and mongod's time.
Prints one line per backend: total and per-read milliseconds (median of 5 rounds).
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from fake_splunkd import SplunkdState, fake_splunkd  # this folder is sys.path[0] when run as a script

from connector.stores import RedisStateStore, SqliteStateStore

N = 300
ROUNDS = 5


def _doc(i: int) -> dict[str, object]:
    return {"format": 1, "stored_at": time.time(), "data": {"ipAddress": f"20.0.{i // 250}.{i % 250}",
            "organizationPrevalence": i, "orgPrevalence": str(i), "orgFirstSeen": None, "orgLastSeen": None,
            "seenInOrg": False, "lookBackHours": 720}}


def _timed(read_all: Callable[[], int]) -> float:
    rounds = []
    for _ in range(ROUNDS):
        started = time.perf_counter()
        assert read_all() == N
        rounds.append(time.perf_counter() - started)
    return statistics.median(rounds)


def _report(name: str, seconds: float, requests: int) -> None:
    print(f"{name:<34} {seconds * 1000:9.1f} ms for {N} reads ({seconds * 1000 / N:6.3f} ms each, "
          f"{requests} round trips)")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--redis-url")
    args = parser.parse_args()
    keys = [f"result:tenant:20.0.{i // 250}.{i % 250}:720" for i in range(N)]
    with tempfile.TemporaryDirectory() as tmp:
        store = SqliteStateStore(Path(tmp) / "state.sqlite3")
        for i, key in enumerate(keys):
            store.set(key, json.dumps(_doc(i)).encode(), ttl_s=3600)
        store.close()
        reader = SqliteStateStore(Path(tmp) / "state.sqlite3")
        _report("SQLite (state dir, add-on default)", _timed(lambda: sum(reader.get(k) is not None for k in keys)), 0)
        if args.redis_url:
            redis_store = RedisStateStore(args.redis_url, namespace="measure-cache")
            for i, key in enumerate(keys):
                redis_store.set(key, json.dumps(_doc(i)).encode(), ttl_s=3600)
            _report("Redis (search-head cluster)", _timed(lambda: sum(redis_store.get(k) is not None for k in keys)),
                    N)

        from splunklib import client

        state = SplunkdState(session_key="measure")
        state.kvstore["mde_cache"] = {k.replace(":", "_"): {"_key": k.replace(":", "_"), **_doc(i)}
                                      for i, k in enumerate(keys)}
        with fake_splunkd(state, Path(tmp)) as uri:
            host, port = uri.removeprefix("https://").split(":")
            service = client.Service(scheme="https", host=host, port=int(port), app="TA-mde-ipstats",
                                     owner="nobody", token="measure")
            path = "storage/collections/data/mde_cache/"

            def one_by_one() -> int:
                return sum(json.loads(service.get(path + k.replace(":", "_"), output_mode="json").body.read())
                           is not None for k in keys)

            def batched() -> int:
                query = json.dumps({"_key": {"$in": [k.replace(":", "_") for k in keys]}})
                return len(json.loads(service.get(path, output_mode="json", query=query).body.read()))

            _report("KV store REST, one GET per key", _timed(one_by_one), N)
            _report("KV store REST, one batched GET", _timed(batched), 1)


if __name__ == "__main__":
    main()
