"""A realistic load on marsserver, for locust.

Mostly hot wallpapers at common screen heights, some photo lists, a few random sizes (which
are cold and exercise the resize queue). Run headless, for example:

    locust -f bench/locustfile.py --headless --host http://127.0.0.1:8080 -u 50 -r 10 -t 30s
"""

from __future__ import annotations

import random

from locust import FastHttpUser, between, task

COMMON_HEIGHTS = (720, 768, 900, 1080, 1440, 2160)


class WallpaperViewer(FastHttpUser):
    """Someone who opens the list now and then and mostly fetches wallpapers for a screen."""

    wait_time = between(0.01, 0.1)

    def on_start(self) -> None:
        with self.client.get("/", name="/ (list)", catch_response=True) as response:
            photos = response.json().get("photos", []) if response.ok else []
            self.photo_count = max(1, len(photos))

    @task(16)
    def hot_wallpaper(self) -> None:
        number = random.randrange(min(self.photo_count, 3))
        height = random.choice(COMMON_HEIGHTS)
        self.client.get(f"/wallpaper?photo_number={number}&height={height}",
                        name="/wallpaper (common height)")

    @task(3)
    def photo_list(self) -> None:
        self.client.get("/", name="/ (list)")

    @task(1)
    def random_size(self) -> None:
        number = random.randrange(self.photo_count)
        with self.client.get(f"/wallpaper?photo_number={number}&height={random.randint(16, 2000)}",
                             name="/wallpaper (random height)", catch_response=True) as response:
            if response.status_code == 503:
                response.success()  # load shedding under a burst of new sizes is by design
