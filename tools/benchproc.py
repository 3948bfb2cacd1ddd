"""What the benchmark scripts of tools/ share (cpu-pairs, vcenter-split):
starting a server that prints "READY <port>", keel-bench's command line
against keeld --dev's certificates, and a process's CPU time."""
import glob
import os
import re
import subprocess
import threading
import time

START_GUARD = 120  # seconds for a server to print READY


class NotStarted(Exception):
    pass


def start_ready(argv):
    """A server that prints "READY <port>" once listening: (process, port).
    Its later output is read and dropped, so that it never blocks on a full pipe."""
    p = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    deadline = time.monotonic() + START_GUARD
    for line in p.stdout:
        m = re.match(r"READY (\d+)", line)
        if m:
            threading.Thread(target=p.stdout.read, daemon=True).start()
            return p, int(m.group(1))
        if time.monotonic() > deadline:
            break
    p.kill()
    p.wait()
    raise NotStarted("%s did not start" % argv[0])


def children(pid):
    out = []
    for task in os.listdir("/proc/%d/task" % pid):
        with open("/proc/%d/task/%s/children" % (pid, task)) as f:
            out += [int(c) for c in f.read().split()]
    return out


def bench_argv(bench, scenario, port, certs, concurrency, count):
    """keel-bench SCENARIO against 127.0.0.1:PORT with keeld --dev's client
    certificate (|certs|: its certs directory), a JSON report. vcenter-task
    is the resumed TLS 1.3 task of issue 7 (resumption is keel-bench's default)."""
    argv = [bench, scenario, "--target", "127.0.0.1:%d" % port,
            "--ca", os.path.join(certs, "ca.crt"), "--cert", os.path.join(certs, "client.crt"),
            "--key", os.path.join(certs, "client.key"), "--concurrency", str(concurrency),
            "--count", str(count), "--json"]
    if scenario == "vcenter-task":
        argv += ["--tls", "1.3"]
    return argv


def process_cpu_ns(pid):
    """CPU ns of |pid| so far, threads that have ended included (utime +
    stime of /proc/PID/stat, in clock ticks): for a server with a thread per
    connection, such as keel-bench serve, whose threads counters() no longer
    sees once they end."""
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) * 1e9 / os.sysconf("SC_CLK_TCK")


def counters(pid):
    """CPU ns and context switches of every live thread of |pid| so far
    (schedstat: ns, not ticks; for long-lived threads, see process_cpu_ns)."""
    cpu = switches = 0
    for task in glob.glob("/proc/%d/task/*" % pid):
        try:
            with open(task + "/schedstat") as f:
                cpu += int(f.read().split()[0])
            with open(task + "/status") as f:
                for line in f:
                    if line.startswith(("voluntary_ctxt", "nonvoluntary_ctxt")):
                        switches += int(line.split()[1])
        except OSError:
            pass  # a thread that ended meanwhile
    return cpu, switches
