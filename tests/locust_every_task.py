"""`bench/locustfile.py`'s traffic mix, for `tests/test_load.py`: each simulated user first runs
every task of the mix once, then the mix as weighted. A short run on a busy machine then still
exercises every task type, whatever the weights (a 1-in-20 task may otherwise never come up).

Only this module's own class is a locust user: the mix's is reached through its module.
"""

from __future__ import annotations

from bench import locustfile as mix


class EveryTaskFirst(mix.WallpaperViewer):
    def on_start(self) -> None:
        super().on_start()
        for task in dict.fromkeys(mix.WallpaperViewer.tasks):  # weights repeat them
            task(self)
