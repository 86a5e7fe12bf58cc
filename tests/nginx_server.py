"""The shipped deploy/nginx.conf, made runnable on free ports (no pytest needed: the soak
benchmark runs it too)."""

from __future__ import annotations

import re
from pathlib import Path

DEPLOYMENT = Path(__file__).parent.parent / "deploy" / "nginx.conf"


def nginx_config(workdir: Path, port: int, upstreams: list[int], connections: int = 256,
                 ) -> Path:
    """deploy/nginx.conf with this test's ports and paths, inside a minimal main context."""
    site = DEPLOYMENT.read_text()
    site = site.replace("/var/cache/nginx/marsserver", str(workdir / "cache"))
    site = re.sub(r"listen 127\.0\.0\.1:\d+;", f"listen 127.0.0.1:{port};", site)
    servers = "".join(f"    server 127.0.0.1:{p};\n" for p in upstreams)
    site = re.sub(r"(    server 127\.0\.0\.1:\d+;\n)+", servers, site)
    (workdir / "site.conf").write_text(site)
    temp = " ".join(f"{kind}_temp_path {workdir / kind};" for kind in
                    ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"))
    main = workdir / "nginx.conf"
    main.write_text(f"""
user root;
worker_processes 1;
pid {workdir / "nginx.pid"};
error_log stderr warn;
events {{ worker_connections {connections}; }}
http {{
    access_log off;
    {temp}
    include {workdir / "site.conf"};
}}
""")
    return main
