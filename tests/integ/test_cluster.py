#!/usr/bin/env python3
"""test_cluster: three mckvd nodes behind nutcracker (ketama, md5), started
by scripts/cluster, as docs/cluster.md tells an operator to run them.

  - 30k keys set through the proxy land within 10 % of 10k on each node
    (curr_items asked on the node itself), each key on exactly one node,
    and every key reads back through the proxy;
  - once the nodes' flushers are idle (stats kvstore: dirty_items and
    queue_depth 0) and one more flush interval has passed, node 2 is
    killed with SIGKILL: meanwhile (auto_eject_hosts false, nothing
    written) its keys fail with SERVER_ERROR through the proxy and the
    others' keys are served;
  - node 2 started again (same port, same data directory) is served by
    the proxy again within a bounded wait, and every one of the 30k keys
    reads back through the proxy with its value: node 2 warmed up from
    its own disk;
  - nodes 1 and 3 are untouched: same pid, uptime going on, same
    curr_items, their keys intact when asked directly.
  - then, with ejection (scripts/cluster --eject), what docs/cluster.md
    says a client sees: one error, misses once node 2 is ejected, a
    write during the outage stored on another node, and node 2's old
    value served again when it is back (the stale read ejection risks).

With a node that does not persist (CLUSTER_TEST_ARGS=--engine=memory)
the restart check fails: that is what the test is for.

MCKVD=/path/to/mckvd TOP_SRCDIR=/path/to/mckv python3 tests/integ/test_cluster.py
Exit status: 0 pass, 1 fail, 77 skip (nutcracker cannot be installed).
"""

import os
import shlex
import shutil
import subprocess
import sys
import time

sys.dont_write_bytecode = True
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "persist"))
import mckvtest as mt  # noqa: E402

KEYS = 30000
NODES = 3
FLUSH_INTERVAL_MS = 100
CLUSTER = os.path.join(os.environ.get("TOP_SRCDIR", os.path.join(HERE, "..", "..")),
                       "scripts", "cluster")


def key(i):
    return b"cluster:%06d" % i


def value(i):
    return b"value-%06d-" % i + b"x" * (i % 50)


def cluster(t, *args, check=True):
    """Runs scripts/cluster ARGS (bounded); returns its stdout."""
    r = subprocess.run([CLUSTER] + list(args), stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, timeout=120)
    out = r.stdout.decode(errors="replace")
    t.log("scripts/cluster %s: exit %d\n%s" % (" ".join(args), r.returncode,
                                                out.rstrip()))
    if check and r.returncode != 0:
        raise mt.StartError("scripts/cluster %s failed (exit %d)"
                            % (args[0], r.returncode))
    return out


def read_env(d):
    """cluster.env as a dict (it is shell: let the shell read it)."""
    out = subprocess.run(
        ["bash", "-c", '. "$1/cluster.env" && printf "%s\\n" "$PROXY_PORT" '
         '"$NODE_PORTS" "$NODE_PIDS" "$PROXY_PID"', "-", d],
        stdout=subprocess.PIPE, check=True, timeout=10).stdout.decode()
    proxy, ports, pids, proxy_pid = out.splitlines()
    return {"proxy": int(proxy), "ports": [int(p) for p in ports.split()],
            "pids": [int(p) for p in pids.split()],
            "proxy_pid": int(proxy_pid)}


def start_cmd(d, options=()):
    extra = ["--threads=2", "--memory-limit=64",
             "--flush-interval-ms=%d" % FLUSH_INTERVAL_MS]
    extra += shlex.split(os.environ.get("CLUSTER_TEST_ARGS", ""))
    return ([CLUSTER, str(NODES), "--dir", d, "--bin", mt.mckvd_path()]
            + list(options) + ["--"] + extra)


def start(t, options=()):
    d = t.tmpdir("test_cluster")
    t.at_cleanup(lambda: cluster(t, "stop", "--dir", d, check=False))
    r = subprocess.run(start_cmd(d, options),
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       timeout=180)
    out = r.stdout.decode(errors="replace")
    t.log("scripts/cluster %d: exit %d\n%s" % (NODES, r.returncode, out.rstrip()))
    if r.returncode != 0:
        # scripts/cluster installs nutcracker; without root or the
        # registry it cannot
        if shutil.which("nutcracker") is None:
            raise mt.Skip("nutcracker is not installed and cannot be")
        raise mt.StartError("scripts/cluster %d failed" % NODES)
    return d, read_env(d)


def node_stats(port):
    with mt.TextClient(port) as c:
        s = c.stats()
    return {n: int(s[n]) for n in ("pid", "uptime", "curr_items")}


def wait_flushed(t, ports, first=1):
    """Every node's flusher idle, then one more flush interval (ports are
    those of nodes first, first + 1, ...)."""
    for i, port in enumerate(ports, first):
        with mt.TextClient(port) as c:
            mt.require_kvstore(t, c, ("dirty_items", "queue_depth"))
            ok, s = mt.wait_clean(c, 30)
        t.check(ok, "node%d: dirty_items %s queue_depth %s after 30 s"
                % (i, s.get("dirty_items"), s.get("queue_depth")),
                "node%d: nothing left to flush (items_persisted %s)"
                % (i, s.get("items_persisted")))
    time.sleep(3 * FLUSH_INTERVAL_MS / 1000.0)


def owners(t, ports):
    """{node index: [key index]}, asking each node directly."""
    keys = [key(i) for i in range(KEYS)]
    found = {}
    for n, port in enumerate(ports, 1):
        with mt.TextClient(port) as c:
            hits = c.get_many(keys)
        found[n] = sorted(int(k.split(b":")[1]) for k in hits)
    return found


def check_through_proxy(t, proxy, what):
    with mt.TextClient(proxy) as c:
        got = c.get_many([key(i) for i in range(KEYS)])
    wrong = [i for i in range(KEYS) if got.get(key(i), (0, None))[1] != value(i)]
    t.check(not wrong, "%s: %d of %d keys missing or wrong through the "
            "proxy (first %s)" % (what, len(wrong), KEYS, wrong[:5]),
            "%s: all %d keys read back through the proxy" % (what, KEYS))


def raw_get(port, k):
    """The first reply line of `get k` (SERVER_ERROR ... when the node is
    down), and the value when there is one."""
    with mt.TextClient(port) as c:
        c.send(b"get " + k + b"\r\n")
        line = c.readline()
        if not line.startswith(b"VALUE"):
            return line, None
        v = c.read_exact(int(line.split()[3]) + 2)[:-2]
        c.readline()
        return line, v


def test_spread(t, env):
    with mt.TextClient(env["proxy"]) as c:
        replies = c.set_many([(key(i), value(i)) for i in range(KEYS)])
    bad = [r for r in replies if r != "STORED"]
    t.check(not bad, "%d sets through the proxy failed: %s" % (len(bad), bad[:3]),
            "%d sets through the proxy: STORED" % KEYS)
    even = KEYS // NODES
    for n, port in enumerate(env["ports"], 1):
        items = node_stats(port)["curr_items"]
        t.check(abs(items - even) <= even // 10,
                "node%d: curr_items %d, not within 10 %% of %d" % (n, items, even),
                "node%d: curr_items %d (even: %d)" % (n, items, even))
    found = owners(t, env["ports"])
    placed = sorted(i for n in found for i in found[n])
    t.check(placed == list(range(KEYS)), "the nodes hold %d keys (%d distinct), "
            "want each of %d on exactly one" % (len(placed), len(set(placed)), KEYS),
            "each key is on exactly one node")
    check_through_proxy(t, env["proxy"], "before the kill")
    return found


def test_kill_restart(t, d, env, found):
    ports, proxy = env["ports"], env["proxy"]
    wait_flushed(t, ports)
    before = {n: node_stats(ports[n - 1]) for n in (1, 3)}
    cluster(t, "kill", "2", "--dir", d)
    line, _ = raw_get(proxy, key(found[2][0]))
    t.check(line.startswith(b"SERVER_ERROR"), "node2 down: its key gave %r "
            "through the proxy, want SERVER_ERROR" % line,
            "node2 down: its key fails through the proxy (%s)" % line.decode())
    line, v = raw_get(proxy, key(found[1][0]))
    t.check(v == value(found[1][0]), "node2 down: a key of node1 gave %r" % line,
            "node2 down: node1's keys are served")
    cluster(t, "start-node", "2", "--dir", d)
    after_env = read_env(d)
    t.check(after_env["pids"][1] != env["pids"][1] and after_env["ports"] == ports,
            "node2 restarted: pids %s -> %s, ports %s -> %s"
            % (env["pids"], after_env["pids"], ports, after_env["ports"]))
    # nutcracker reconnects on the next request (no ejection): bounded wait
    k2 = found[2][0]
    served = mt.wait_for(lambda: raw_get(proxy, key(k2))[1] == value(k2), 20, 0.1)
    t.check(served, "node2's key %r not served through the proxy 20 s after "
            "the restart: %r" % (key(k2), raw_get(proxy, key(k2))[0]),
            "node2 serves through the proxy again")
    check_through_proxy(t, proxy, "after node2's SIGKILL and restart")
    items2 = node_stats(ports[1])["curr_items"]
    t.check(items2 == len(found[2]), "node2 after restart: curr_items %d, "
            "it held %d" % (items2, len(found[2])),
            "node2 after restart: curr_items %d, as before" % items2)
    for n in (1, 3):
        now = node_stats(ports[n - 1])
        b = before[n]
        t.check(now["pid"] == b["pid"] and now["uptime"] >= b["uptime"]
                and now["curr_items"] == b["curr_items"],
                "node%d disturbed: %s -> %s" % (n, b, now),
                "node%d untouched: pid %d, uptime %d -> %d s, curr_items %d"
                % (n, now["pid"], b["uptime"], now["uptime"], now["curr_items"]))
    again = owners(t, ports)
    for n in (1, 3):
        t.check_eq(again[n], found[n], "node%d's keys asked directly" % n)


def running(pid):
    """pid is alive and not a zombie (the nodes are not our children)."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def test_start_over_nodes(t, d, env):
    """The proxy gone, the nodes still running: `scripts/cluster N` in
    the same directory refuses, rather than start a second process on
    each node's database and lose the first one's pid; `stop` then
    stops the nodes."""
    os.kill(env["proxy_pid"], 9)
    gone = mt.wait_for(lambda: not running(env["proxy_pid"]), 20, 0.05)
    t.check(gone, "nutcracker (pid %d) survived SIGKILL" % env["proxy_pid"])
    r = subprocess.run(start_cmd(d), stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, timeout=180)
    out = r.stdout.decode(errors="replace")
    t.log("scripts/cluster %d over running nodes: exit %d\n%s"
          % (NODES, r.returncode, out.rstrip()))
    t.check(r.returncode != 0 and "is running" in out,
            "scripts/cluster %d over running nodes: exit %d, %r"
            % (NODES, r.returncode, out[-200:]),
            "scripts/cluster %d refuses while the nodes run" % NODES)
    t.check_eq(read_env(d)["pids"], env["pids"],
               "the node pids in cluster.env after the refused start")
    cluster(t, "stop", "--dir", d)
    left = [p for p in env["pids"] if running(p)]
    t.check(not left, "nodes still running after stop: %s" % left,
            "stop stopped every node")


def node_of(port, keys):
    """The key indexes among `keys` that node `port` holds."""
    with mt.TextClient(port) as c:
        hits = c.get_many([key(i) for i in keys])
    return sorted(int(k.split(b":")[1]) for k in hits)


def test_eject(t):
    """With --eject (auto_eject_hosts: true, server_failure_limit 2,
    server_retry_timeout 5 s: the outage's requests all fall within it), what docs/cluster.md says a client sees:
    errors, then the dead node's keys on the others, then its old value
    back when it returns (a stale read: the risk of ejection with a
    persistent node)."""
    d, env = start(t, ["--eject", "--retry-timeout", "5000"])
    proxy, ports = env["proxy"], env["ports"]
    with mt.TextClient(proxy) as c:
        c.set_many([(key(i), value(i)) for i in range(300)])
    k = key(node_of(ports[1], range(300))[0])
    wait_flushed(t, ports[1:2], first=2)
    cluster(t, "kill", "2", "--dir", d)
    replies = [raw_get(proxy, k)[0] for _ in range(6)]
    t.check(replies[0].startswith(b"SERVER_ERROR") and replies[-1] == b"END",
            "ejection: gets of node2's key gave %s, want SERVER_ERROR first "
            "and a miss (END) once node2 is ejected" % replies,
            "ejection: node2's key fails, then misses: %s"
            % [r.decode() for r in replies])
    with mt.TextClient(proxy) as c:
        t.check_eq(c.set(k, b"written-during-outage"), "STORED",
                   "ejection: a set of node2's key during the outage")
    t.check_eq(raw_get(proxy, k)[1], b"written-during-outage",
               "ejection: the key read back during the outage")
    cluster(t, "start-node", "2", "--dir", d)
    old = value(int(k.split(b":")[1]))
    back = mt.wait_for(lambda: raw_get(proxy, k)[1] == old, 20, 0.2)
    t.check(back, "ejection: node2's old value not served 20 s after its "
            "return: %r" % (raw_get(proxy, k),),
            "ejection: node2 back after server_retry_timeout with its old "
            "value (the write made during the outage is shadowed)")
    cluster(t, "stop", "--dir", d)


def main(t):
    d, env = start(t)
    t.info("proxy %d, nodes %s" % (env["proxy"], env["ports"]))
    found = test_spread(t, env)
    if t.failures:
        return
    test_kill_restart(t, d, env, found)
    test_start_over_nodes(t, d, read_env(d))
    test_eject(t)


if __name__ == "__main__":
    mt.Test("test_cluster", time_limit=240).run(main)
