"""down.py, drill 6: a service stays down after a restart with a bad config.

The incident: a log-rotation job restarted HTTP with a config typo and the
site stayed down. Here a real nginx serves on loopback with a probe on it;
it is stopped and started again with a broken configuration (it exits at
once), stays down, then is fixed. Expect: the endpoint-down alert within two
probe intervals of the outage, resolved within two intervals of the fix.
"""
import os
import shutil
import subprocess
import time

from harness import DrillFailed, Sink, Sitrep, Skip, Watch, free_port, http_get, result, wait_until

NAME = "down"
TITLE = "HTTP down after a restart with a broken config (log rotation)"
INTERVAL = 5

CONF = """
worker_processes 1;
pid %(dir)s/nginx.pid;
error_log %(dir)s/error.log;
events { worker_connections 64; }
http {
    access_log %(dir)s/access.log;
    client_body_temp_path %(dir)s/tmp; proxy_temp_path %(dir)s/tmp;
    fastcgi_temp_path %(dir)s/tmp; uwsgi_temp_path %(dir)s/tmp; scgi_temp_path %(dir)s/tmp;
    server { listen 127.0.0.1:%(port)d; location / { return 200 "ok\\n"; } }
}
"""


def run(d, netdata=None):
    if not shutil.which("nginx"):
        raise Skip("nginx is not installed (scripts/deps.sh test installs it)")
    port = free_port()
    os.makedirs(d.path("tmp"), exist_ok=True)
    good = CONF % {"dir": d.dir, "port": port}
    conf = d.path("nginx.conf")
    with open(conf, "w") as f:
        f.write(good)
    start = lambda: d.spawn(["nginx", "-c", conf, "-g", "daemon off;"], name="nginx")
    web = start()
    wait_until(lambda: http_get("http://127.0.0.1:%d/" % port)[0] == 200, 10, "nginx")
    sink = Sink(d)
    s = Sitrep(d, sink, "probes:\n  - {name: web, url: 'http://127.0.0.1:%d/', interval: %ds}\n"
               "  - {name: self, url: '%s/-/healthy', interval: %ds}\n"
               % (port, INTERVAL, "http://127.0.0.1:%d" % 0, INTERVAL))
    # The second probe is sitrep itself (known up): the network guard has a witness.
    with open(s.cfg) as f:
        text = f.read().replace("http://127.0.0.1:0/-/healthy", s.url + "/-/healthy")
    with open(s.cfg, "w") as f:
        f.write(text)
    s.start()
    w = Watch(d, s)
    time.sleep(3 * INTERVAL if d.short else 60)
    # "Log rotation": stop, then restart with a typo; nginx refuses the config and exits.
    onset = time.time()
    d.stop(web)
    with open(conf, "w") as f:
        f.write(good.replace("worker_connections 64;", "worker_connections 64"))
    broken = subprocess.run(["nginx", "-c", conf, "-g", "daemon off;"], capture_output=True,
                            timeout=30)
    d.note("broken restart exited %d: %s" % (broken.returncode,
                                             broken.stderr.decode(errors="replace").strip()[:200]))
    try:
        w.wait_firing("EndpointDown", 2 * INTERVAL + 10, onset)
    except DrillFailed:
        pass
    time.sleep(INTERVAL if d.short else 60)
    with open(conf, "w") as f:
        f.write(good)
    fixed = time.time()
    web = start()
    resolved = None
    end = time.time() + 2 * INTERVAL + 15
    while time.time() < end:
        if "EndpointDown" not in w.firing_now():
            resolved = time.time()
            break
        time.sleep(0.25)
    r = result(d, onset, [{"alert": "EndpointDown", "within": 2 * INTERVAL, "cause_named": None}],
               sink, w, netdata)
    row = r["rows"][0]
    note = sink.first("EndpointDown", since=onset)
    row["cause_named"] = None if note is None else note[1]["labels"].get("service") == "web"
    rdelay = None if resolved is None else round(resolved - fixed, 1)
    r["rows"].append({"alert": "EndpointDown resolved after the fix", "deadline_s": 2 * INTERVAL,
                      "firing_at": None, "delay_s": rdelay, "notified_delay_s": None,
                      "cause_named": None, "recovery": True,
                      "ok": rdelay is not None and rdelay <= 2 * INTERVAL})
    r["notes"].append("probe interval %d s; the broken restart exited with status %d"
                      % (INTERVAL, broken.returncode))
    return r
