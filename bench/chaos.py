#!/usr/bin/env python3
"""Seeded chaos for cluster mode: three nats-servers and three contextd nodes on loopback,
writers and readers on every node, and every few seconds a seeded fault: kill -9 of a node
(restarted a few seconds later), kill -9 of a nats-server (the stream's leader half the
time; restarted later; never two at once, so a quorum remains), or SIGSTOP of a node for
a few seconds. Every write a node acknowledged goes into a ledger; at the end everything
is brought back, and every acknowledged document must be on every node, and every node's
digest (GET /v1/admin/digest) must be the same.

Usage: bench/chaos.sh SEED MINUTES  (this file does the work; plain Python, no packages)
Prints one JSON line of figures and exits 1 if an acknowledged write was lost or the
nodes' digests differ.
"""
import json
import os
import random
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.path.join(ROOT, "build", "bin", "contextd")
DIM = 16


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def call(url, method="GET", body=None, headers=None, timeout=10):
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method, headers=headers or {})
    if data is not None:
        req.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, json.loads(r.read() or b"{}")
    except urllib.error.HTTPError as e:
        try:
            return e.code, json.loads(e.read() or b"{}")
        except ValueError:
            return e.code, {}
    except (OSError, ValueError):
        return 0, {}  # refused, reset, timed out: the node is down or frozen


class Cluster:
    def __init__(self, work):
        self.work = work
        self.nats_ports = [free_port() for _ in range(3)]
        self.route_ports = [free_port() for _ in range(3)]
        self.node_ports = [free_port() for _ in range(3)]
        self.nats = [None] * 3
        self.nodes = [None] * 3
        self.urls = ",".join(f"nats://127.0.0.1:{p}" for p in self.nats_ports)

    def start_nats(self, i):
        routes = ",".join(f"nats://127.0.0.1:{p}" for p in self.route_ports)
        log = open(os.path.join(self.work, f"nats{i}.log"), "a")
        self.nats[i] = subprocess.Popen(
            ["nats-server", "-a", "127.0.0.1", "-p", str(self.nats_ports[i]), "--server_name", f"nats{i}", "-js",
             "-sd", os.path.join(self.work, f"nats{i}"), "--cluster_name", "chaos", "--cluster",
             f"nats://127.0.0.1:{self.route_ports[i]}", "--routes", routes], stdout=log, stderr=log)

    def start_node(self, i):
        log = open(os.path.join(self.work, f"node{i}.log"), "a")
        self.nodes[i] = subprocess.Popen(
            [BIN, "serve", "--host", "127.0.0.1", "--port", str(self.node_ports[i]), "--data",
             os.path.join(self.work, f"node{i}"), "--models", os.path.join(ROOT, "models"), "--cluster", self.urls,
             "--node-id", f"node{i}", "--write-threads", "8"], stdout=log, stderr=log)

    def node_url(self, i):
        return f"http://127.0.0.1:{self.node_ports[i]}"

    def wait_ready(self, i, limit_s=120):
        end = time.time() + limit_s
        while time.time() < end:
            if call(self.node_url(i) + "/readyz", timeout=2)[0] == 200:
                return True
            time.sleep(0.2)
        return False

    def kill(self, procs, i, sig=signal.SIGKILL):
        p = procs[i]
        if p is not None and p.poll() is None:
            p.send_signal(sig)
            if sig == signal.SIGKILL:
                p.wait()

    def stop_all(self):
        for procs in (self.nodes, self.nats):
            for i, p in enumerate(procs):
                if p is not None and p.poll() is None:
                    p.send_signal(signal.SIGCONT)
                    p.kill()
                    p.wait()


def main():
    seed, minutes = int(sys.argv[1]), float(sys.argv[2])
    rng = random.Random(seed)
    work = tempfile.mkdtemp(prefix="chaos-")
    c = Cluster(work)
    for i in range(3):
        c.start_nats(i)
    for i in range(3):
        c.start_node(i)
    if not all(c.wait_ready(i) for i in range(3)):
        print("chaos: a node never became ready; logs in " + work, file=sys.stderr)
        c.stop_all()
        return 1
    status, _ = call(c.node_url(0) + "/v1/collections/chaos", "PUT", {"embedder": "none", "dim": DIM})
    assert status == 201, status

    ledger = {}  # id -> text, acknowledged
    lock = threading.Lock()
    stop = threading.Event()
    counts = {"writes_acked": 0, "writes_refused": 0, "reads_ok": 0, "reads_failed": 0, "read_attempts_failed": 0,
              "faults": 0}
    frozen = set()  # nodes under SIGSTOP: clients skip them (a frozen socket only times out)

    def writer(w):
        wrng = random.Random(seed * 1000 + w)
        n = 0
        while not stop.is_set():
            doc_id = f"w{w}-{n}"
            n += 1
            text = f"chaos document {doc_id} about topic {wrng.randrange(50)}"
            if n % 5 == 0:  # a longer one (~4 KB of repetitive text): logged compressed
                text += "".join(f" sentence {k} of {doc_id} repeats the topic." for k in range(100))
            vec = [wrng.gauss(0, 1) for _ in range(DIM)]
            body = {"documents": [{"id": doc_id, "text": text, "vector": vec}]}
            # A write retried on other nodes with the same key is applied at most once.
            headers = {"Idempotency-Key": doc_id}
            for attempt in range(6):
                i = wrng.randrange(3)
                if i in frozen:
                    continue
                status, _ = call(c.node_url(i) + "/v1/collections/chaos/documents", "POST", body, headers, timeout=20)
                if status == 200:
                    with lock:
                        ledger[doc_id] = text
                        counts["writes_acked"] += 1
                    break
                time.sleep(0.2 * (attempt + 1))
            else:
                with lock:
                    counts["writes_refused"] += 1

    def reader(r):
        rrng = random.Random(seed * 2000 + r)
        while not stop.is_set():
            q = {"query": f"topic {rrng.randrange(50)}", "k": 5, "mode": "keyword", "consistency": "eventual"}
            # As a client that knows every node: one other node when the first fails.
            first = rrng.randrange(3)
            tries = [first, (first + 1 + rrng.randrange(2)) % 3]
            status = 0
            for i in tries:
                if i in frozen:
                    continue
                status, _ = call(c.node_url(i) + "/v1/collections/chaos/query", "POST", q, timeout=5)
                if status == 200:
                    break
                with lock:
                    counts["read_attempts_failed"] += 1
            with lock:
                counts["reads_ok" if status == 200 else "reads_failed"] += 1
            time.sleep(0.05)

    threads = [threading.Thread(target=writer, args=(w,)) for w in range(4)]
    threads += [threading.Thread(target=reader, args=(r,)) for r in range(2)]
    for t in threads:
        t.start()

    faults = []
    end = time.time() + minutes * 60
    while time.time() < end:
        time.sleep(rng.uniform(5, 15))
        kind = rng.choice(["kill_node", "kill_nats", "kill_leader", "stop_node"])
        t0 = time.time()
        if kind == "kill_node":
            i = rng.randrange(3)
            c.kill(c.nodes, i)
            time.sleep(rng.uniform(1, 8))
            c.start_node(i)
            ok = c.wait_ready(i)
            faults.append({"t": round(t0, 1), "fault": kind, "node": i, "ready_after_s": round(time.time() - t0, 1),
                           "ready": ok})
        elif kind in ("kill_nats", "kill_leader"):
            i = rng.randrange(3)
            if kind == "kill_leader":
                _, cl = call(c.node_url(rng.randrange(3)) + "/v1/cluster", timeout=5)
                leader = cl.get("log", {}).get("leader", "")
                if leader.startswith("nats"):
                    i = int(leader[4:])
            c.kill(c.nats, i)
            time.sleep(rng.uniform(3, 12))
            c.start_nats(i)
            faults.append({"t": round(t0, 1), "fault": kind, "server": i, "down_s": round(time.time() - t0, 1)})
            time.sleep(5)  # let it rejoin before the next fault may take another server
        else:
            i = rng.randrange(3)
            frozen.add(i)
            c.kill(c.nodes, i, signal.SIGSTOP)
            time.sleep(rng.uniform(2, 6))
            c.kill(c.nodes, i, signal.SIGCONT)
            frozen.discard(i)
            faults.append({"t": round(t0, 1), "fault": kind, "node": i, "stopped_s": round(time.time() - t0, 1)})
        counts["faults"] += 1

    stop.set()
    for t in threads:
        t.join()
    # Everything back up, then every node must hold every acknowledged write.
    for i in range(3):
        if c.nats[i].poll() is not None:
            c.start_nats(i)
        if c.nodes[i].poll() is not None:
            c.start_node(i)
    ready = all(c.wait_ready(i) for i in range(3))
    lost = {}
    digests = []
    ids = sorted(ledger)
    for i in range(3):
        missing = []
        for b in range(0, len(ids), 1000):
            batch = ids[b:b + 1000]
            status, got = call(c.node_url(i) + "/v1/collections/chaos/documents/get", "POST", {"ids": batch},
                               {"X-Contextd-Consistency": "strong"}, timeout=60)
            if status != 200:
                missing += batch
                continue
            missing += got.get("missing", [])
            for d in got.get("documents", []):
                if d.get("text") != ledger[d["id"]]:
                    missing.append(d["id"])
        lost[f"node{i}"] = len(missing)
    # The same applied sequence everywhere, then the digests.
    for _ in range(100):
        seqs = [call(c.node_url(i) + "/v1/admin/digest", timeout=30)[1].get("applied_sequence") for i in range(3)]
        if len(set(seqs)) == 1:
            break
        time.sleep(0.3)
    for i in range(3):
        digests.append(call(c.node_url(i) + "/v1/admin/digest", timeout=30)[1].get("collections"))
    same = digests[0] is not None and all(d == digests[0] for d in digests)
    reads = counts["reads_ok"] + counts["reads_failed"]
    out = {"seed": seed, "minutes": minutes, **counts, "ledger": len(ledger), "lost": lost,
           "read_error_pct": round(100.0 * counts["reads_failed"] / max(1, reads), 2), "digests_equal": same,
           "all_ready": ready, "faults_list": faults, "work": work}
    print(json.dumps(out))
    c.stop_all()
    return 0 if ready and same and sum(lost.values()) == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
