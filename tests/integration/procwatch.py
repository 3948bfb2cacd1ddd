"""A process under test whose stdout and stderr lines are collected by
threads, so that tests wait on what it prints (READY lines, log lines, the end
of a stream) instead of sleeping. Timeouts are guards that fail a stuck test,
never a way to wait for something."""
import os
import re
import subprocess
import sys
import threading

# KEEL_VALGRIND=DIR runs Keel's own binaries (keeld, the echo server) under
# valgrind's memcheck, one log per process in DIR (tools/memcheck sums them up).
MEMCHECK = os.environ.get("KEEL_VALGRIND", "")
SUPPRESSIONS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "valgrind.supp")
# memcheck makes a process 20-50 times slower: what a test gives a server
# to do within a deadline of its own is scaled by this.
SLOW = 10 if MEMCHECK else 1
GUARD = 60 * SLOW  # seconds before a stuck test gives up
# KEEL_LOG_TAIL=N (set by CTest): a process's last N stderr lines are printed
# when it ends, which ctest --output-on-failure shows with a failed test.
LOG_TAIL = int(os.environ.get("KEEL_LOG_TAIL", "0"))


def memcheck():
    """The argv prefix that runs a Keel binary under memcheck, or []."""
    if not MEMCHECK:
        return []
    return ["valgrind", "--tool=memcheck", "--error-exitcode=99", "--leak-check=full",
            "--show-leak-kinds=definite,indirect", "--errors-for-leak-kinds=definite,indirect",
            "--error-markers=MEMCHECK-ERROR-BEGIN,MEMCHECK-ERROR-END", "--num-callers=40",
            "--suppressions=" + SUPPRESSIONS, "--log-file=" + os.path.join(MEMCHECK, "%p.log")]


class Process:
    """argv started with stdout and stderr piped into self.out / self.err
    (lists of lines; None marks the end of a stream)."""

    def __init__(self, argv, stdin=None):
        self.cv = threading.Condition()
        self.out, self.err = [], []
        self.proc = subprocess.Popen(argv, stdin=stdin, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE)
        for stream, sink in ((self.proc.stdout, self.out), (self.proc.stderr, self.err)):
            threading.Thread(target=self._pump, args=(stream, sink), daemon=True).start()

    def _pump(self, stream, sink):
        for raw in stream:
            with self.cv:
                sink.append(raw.decode(errors="replace").rstrip("\n"))
                self.cv.notify_all()
        with self.cv:
            sink.append(None)  # end of stream
            self.cv.notify_all()

    def wait_line(self, sink, pattern, start=0):
        """Waits for a line matching |pattern| at index >= start; returns its match."""
        rx = re.compile(pattern)
        with self.cv:
            i = start
            while True:
                while i < len(sink):
                    if sink[i] is None:
                        raise AssertionError("stream ended before /%s/; stderr:\n%s" % (
                            pattern, "\n".join(l for l in self.err if l)))
                    m = rx.search(sink[i])
                    if m:
                        return m
                    i += 1
                if not self.cv.wait(GUARD):
                    raise AssertionError("no line /%s/ within %d s" % (pattern, GUARD))

    def wait_lines(self, sink, pattern, count, start=0):
        """Waits until |count| lines at index >= start match |pattern|."""
        rx = re.compile(pattern)
        with self.cv:
            while sum(1 for l in sink[start:] if l and rx.search(l)) < count:
                if sink[-1:] == [None]:
                    raise AssertionError("stream ended before %d lines /%s/" % (count, pattern))
                if not self.cv.wait(GUARD):
                    raise AssertionError("no %d lines /%s/ within %d s" % (count, pattern,
                                                                          GUARD))

    def end(self):
        """At a test's end: SIGKILL, or under memcheck SIGTERM, so that valgrind
        checks for leaks at the exit (SIGKILL if it is not gone within GUARD)."""
        if self.proc.poll() is None and MEMCHECK:
            self.proc.terminate()
            try:
                self.proc.wait(GUARD)
            except subprocess.TimeoutExpired:
                pass
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(GUARD)
        if LOG_TAIL > 0:
            with self.cv:
                tail = [l for l in self.err if l is not None][-LOG_TAIL:]
            sys.stderr.write("--- %s: its last %d stderr lines ---\n%s\n" % (
                " ".join(os.path.basename(a) for a in self.proc.args), len(tail),
                "\n".join(tail)))

    def mark(self):
        """The index of the next stderr line, to wait for lines after now."""
        with self.cv:
            return len(self.err)

    def stderr_text(self):
        with self.cv:
            return "\n".join(l for l in self.err if l)
