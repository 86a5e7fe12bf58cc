"""The upstream budget's bucket shared by every instance on one Redis (see `budget.py`).

One hash under the deployment's key prefix holds the tokens and when they were counted; one
Lua script refills, takes and stores them atomically, on Redis's own clock (`TIME`), so no
instance's clock matters and no two instances take the same token. The key expires once the
bucket would be full again, which is what a missing key means: Redis keeps nothing idle.

While Redis cannot be reached (`SharedCache.call` decides, and logs it once), calls draw from
this process's own bucket instead: a deployment of k instances may then make k * N calls a
minute, the price of still serving while Redis is down.
"""

from __future__ import annotations

from .budget import PERIOD, Bucket, Draw, LocalBucket
from .redis_cache import SharedCache, Unreachable

#: KEYS[1]: the bucket; ARGV: capacity, tokens gained per second, floor. Numbers go back as
#: strings: Redis would cut a Lua number to an integer.
TAKE = """
local capacity, rate, floor = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local clock = redis.call('TIME')
local now = tonumber(clock[1]) + tonumber(clock[2]) / 1000000
local state = redis.call('HMGET', KEYS[1], 'tokens', 'stamp')
local tokens = tonumber(state[1]) or capacity
local stamp = tonumber(state[2]) or now
tokens = math.min(capacity, tokens + math.max(0, now - stamp) * rate)
local wait = 0
if tokens >= floor + 1 then
  tokens = tokens - 1
else
  wait = (floor + 1 - tokens) / rate
end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'stamp', tostring(now))
redis.call('PEXPIRE', KEYS[1], math.ceil((capacity - tokens) / rate * 1000) + 1)
return {tostring(tokens), tostring(wait)}
"""


class SharedBucket:
    """A token bucket of `capacity` tokens per `period` in Redis, `fallback` while Redis is
    unreachable."""

    def __init__(self, cache: SharedCache, capacity: int, period: float = PERIOD,
                 fallback: Bucket | None = None) -> None:
        self._cache = cache
        self._script = cache.client.register_script(TAKE)
        self._key = cache.key("upstream-budget")
        self._args = (capacity, repr(capacity / period))
        self._fallback = fallback or LocalBucket(capacity, period)

    async def take(self, floor: int) -> Draw:
        try:
            left, wait = await self._cache.call(
                lambda: self._script(keys=[self._key], args=[*self._args, floor]))
        except Unreachable:
            return await self._fallback.take(floor)
        return Draw(float(left), float(wait))
