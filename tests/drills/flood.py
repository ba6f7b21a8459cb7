"""flood.py, drill 5: a partner floods an API and retries every "busy".

The incident: a partner's sync flooded the API every 15 minutes and retried
every "busy" answer at once. Here an API with a concurrency limit (503 when
busy) serves steady clients from many addresses; then one partner address
fires hundreds of requests at once and retries each 503 immediately, in
bursts. Expect: the flood alert naming that client within 30 s, and the
retry storm visible (its alert, or at least accesslog_retries_total moving).
The API's accept queue overflows under the burst, so the host-level
TCPListenQueueOverflow must fire too: it is the first sign, the same one
Netdata's stock alarm watches.
"""
import threading
import time

from harness import Sink, Sitrep, Watch, result, web_service
from load import Steady, addresses, burst

NAME = "flood"
TITLE = "A partner's sync floods the API and retries every 503"
PARTNER = "127.0.9.77"


def run(d, netdata=None):
    port, log, entry = web_service(d, "api", "--max-inflight", "8")
    sink = Sink(d)
    s = Sitrep(d, sink, "logs:\n" + entry).start()
    w = Watch(d, s)
    clients = Steady(port, ["/sleep?s=0.02", "/sleep?s=0.05", "/missing/x"],
                     addresses(1, 40), rate=8, concurrency=4)
    d.at_exit(clients.stop)
    time.sleep(40 if d.short else 180)
    onset = time.time()
    stop = threading.Event()
    sent = []

    def partner():
        # A sync: a burst of requests at once, each retried at once on 503, again and again.
        while not stop.is_set():
            sent.extend(burst(port, "/sleep?s=0.05", PARTNER, 300, retries=5, threads=48))
            stop.wait(2)

    t = threading.Thread(target=partner, daemon=True)
    t.start()
    try:
        for a in ("TCPListenQueueOverflow", "ClientFlood", "RetryStorm"):
            try:
                w.wait_firing(a, max(1, 40 - (time.time() - onset)), onset)
            except Exception:
                pass
        retries = s.value('sum(increase(accesslog_retries_total{service="api"}[1m]))')
        time.sleep(0 if d.short else 120)
    finally:
        stop.set()
        t.join(120)
    exps = [{"alert": "TCPListenQueueOverflow", "within": 30}]
    for a in ("ClientFlood", "RetryStorm"):
        inst = w.instances(a)
        named = any(i["labels"].get("client") == PARTNER or PARTNER in str(i.get("annotations"))
                    for i in inst) if inst else None
        exps.append({"alert": a, "within": 30, "cause_named": named if a == "ClientFlood" else None})
    r = result(d, onset, exps, sink, w, netdata,
               ["partner sent %d requests (%d answered 503); retries counted by sitrep in the "
                "minute after onset: %s" % (len(sent), sent.count(503), retries)])
    # The storm must at least be visible in the series, whether or not its alert fired.
    r["rows"][2]["ok"] = r["rows"][2]["ok"] or bool(retries and retries > 0)
    r["rows"][1]["ok"] = r["rows"][1]["ok"] and bool(r["rows"][1]["cause_named"])
    return r
