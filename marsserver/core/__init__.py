"""The coordination core: the pipeline and what it stands on (coalescing, caches, Redis
leases, cache entries), with no HTTP in sight."""
