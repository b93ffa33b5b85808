"""bench/procstats.py - the /proc readings of bench/run.py: process and thread CPU, RSS, and the
sampler that times a kafkatos3 drain's phases from outside the daemon.

Linux only, standard library only. CPU figures are utime+stime in clock ticks (/proc/PID/stat,
fields 14-15; + cutime+cstime where said) converted to seconds; the drain sampler uses the
nanosecond on-CPU time of /proc/PID/task/TID/schedstat, fine enough for 50 ms intervals.
"""
import os
import threading
import time

CLK_TCK = os.sysconf("SC_CLK_TCK")


def _stat_fields(path):
    """(comm, fields after the comm: state is [0], ppid [1], utime [11], stime [12]) or None."""
    try:
        with open(path) as f:
            data = f.read()
    except OSError:
        return None
    return data[data.index("(") + 1:data.rindex(")")], data[data.rindex(")") + 2:].split()


def proc_stat(pid):
    """(ppid, utime+stime+cutime+cstime in ticks) of pid, or None."""
    st = _stat_fields(f"/proc/{pid}/stat")
    if st is None:
        return None
    fields = st[1]
    return int(fields[1]), sum(int(x) for x in fields[11:15])


def cpu_seconds(pid):
    """utime+stime of one process (all its threads, live or exited; not its children), or None."""
    st = _stat_fields(f"/proc/{pid}/stat")
    return None if st is None else (int(st[1][11]) + int(st[1][12])) / CLK_TCK


def proc_status_kb(pid, key):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(key + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def tree_pids(root):
    children = {}
    for name in os.listdir("/proc"):
        if name.isdigit():
            st = proc_stat(int(name))
            if st:
                children.setdefault(st[0], []).append(int(name))
    out, todo = [], [root]
    while todo:
        pid = todo.pop()
        out.append(pid)
        todo.extend(children.get(pid, []))
    return out


def tree_cpu_seconds(root):
    total = 0
    for pid in tree_pids(root):
        st = proc_stat(pid)
        if st:
            total += st[1]
    return total / CLK_TCK


class RssSampler(threading.Thread):
    """Peak of the summed VmRSS of a process tree, sampled every 0.2 s."""

    def __init__(self, root):
        super().__init__(daemon=True)
        self.root, self.peak_kb, self.processes = root, 0, 0
        self.stop_flag = threading.Event()

    def run(self):
        while not self.stop_flag.is_set():
            pids = tree_pids(self.root)
            self.processes = max(self.processes, len(pids))
            self.peak_kb = max(self.peak_kb, sum(proc_status_kb(p, "VmRSS") for p in pids))
            self.stop_flag.wait(0.2)

    def stop(self):
        self.stop_flag.set()
        self.join()


# ---------------------------------------------------------------- threads
# Thread families of the daemon, by the name each thread gives itself (comm, at most 15 characters:
# "compress-dispatch" reads "compress-dispat"). Each consumer thread has a writer thread (writer-N). The tokio runtime's workers and its blocking pool
# are all named "uploader". librdkafka names its threads rdk:main, rdk:broker<N> (one per broker
# connection, including the bootstrap one) and a few more (rdk:bg, ...).
FAMILIES = ["consumer", "writer", "compressor", "compress-dispatch", "uploader", "rdk:main", "rdk:broker", "rdk:other",
            "other", "exited"]


def family(comm):
    for prefix, name in (("consumer-", "consumer"), ("read_ceiling", "consumer"), ("writer-", "writer"),
                         ("compressor-", "compressor"),
                         ("compress-dispat", "compress-dispatch"), ("uploader", "uploader"),
                         ("rdk:main", "rdk:main"), ("rdk:broker", "rdk:broker"), ("rdk:", "rdk:other")):
        if comm.startswith(prefix):
            return name
    return "other"


def threads(pid):
    """[(tid, comm, utime+stime ticks)] of pid's live threads."""
    out = []
    try:
        tids = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return out
    for tid in tids:
        st = _stat_fields(f"/proc/{pid}/task/{tid}/stat")
        if st:
            out.append((int(tid), st[0], int(st[1][11]) + int(st[1][12])))
    return out


def cpu_by_family(pid):
    """CPU seconds of a live process by thread family. "exited" is what threads that already ended
    used: the process's own utime+stime (which keeps theirs) minus the sum over its live threads."""
    total = cpu_seconds(pid)
    by = {name: 0.0 for name in FAMILIES}
    counts = {name: 0 for name in FAMILIES}
    for _, comm, ticks in threads(pid):
        by[family(comm)] += ticks / CLK_TCK
        counts[family(comm)] += 1
    if total is not None:
        by["exited"] = max(0.0, total - sum(by.values()))
    return {"cpu_s": by, "threads": counts, "process_cpu_s": total}


# ---------------------------------------------------------------- the drain's phases
def _schedstat_ns(pid, tid):
    """(ns on a CPU, ns runnable but waiting for a CPU) of a thread so far, or None."""
    try:
        with open(f"/proc/{pid}/task/{tid}/schedstat") as f:
            on_cpu, waiting = f.read().split()[:2]
        return int(on_cpu), int(waiting)
    except (OSError, ValueError):
        return None


def machine_busy_ticks():
    """(busy, of which kernel) ticks all CPUs of the machine spent so far (/proc/stat: busy is all but
    idle and iowait; kernel is system + irq + softirq, e.g. the kworkers writing files back)."""
    with open("/proc/stat") as f:
        user, nice, system, idle, iowait, irq, softirq, steal = (int(x) for x in f.readline().split()[1:9])
    return user + nice + system + irq + softirq + steal, system + irq + softirq


class DrainSampler(threading.Thread):
    """Every `interval` s, from outside the process: the utime+stime of the processes in `pids`
    ({name: pid}) and the machine's busy time (/proc/stat), to tell how many cores each used in a
    phase; the time on a CPU and runnable waiting for one (schedstat, ns) of the threads whose name
    starts with `consumer` (kafkatos3's consumer-*, the ceiling's main thread); and, when `workdir`
    is given (a kafkatos3 run), the sizes of its in-progress files (WORKDIR/inprogress/*/*/data.mak):

    - first_record: the first sample that sees an in-progress file. The daemon creates a
      partition's file when it appends the partition's first record, so this is when the first
      record was consumed (to one interval). files_opened: the same per partition directory.
    - last_busy: the end of the last interval in which the consumer threads were on a CPU for at
      least `busy` of it (summed over consumer threads; they poll librdkafka and append to the
      files, and only tick every 100 ms once the topic runs dry). Taken as the last record consumed.
    - last_write: the last sample in which an in-progress file grew or a new one appeared. It
      lags the last record: the tail of each partition's append buffer is written at the next
      flush (flush_interval_ms, 1 s by default) or seal, so it is only an upper bound, a cross-check.
    With threads_every=N, every N samples it also reads the process's CPU by thread family
    (last_threads): for the ceiling, which exits by itself before it could be read at the end.
    Times are seconds since `t0` (time.monotonic()).
    """

    def __init__(self, pids, t0, consumer="consumer-", workdir=None, interval=0.05, busy=0.25, threads_every=None):
        super().__init__(daemon=True)
        self.pids, self.t0, self.consumer, self.workdir = pids, t0, consumer, workdir
        self.interval, self.busy, self.threads_every = interval, busy, threads_every
        self.first_record = self.last_busy = self.last_write = None
        self.last_threads = None  # (t, cpu_by_family) every threads_every samples, for a process that exits
        self.files_opened = {}
        self.series = []  # [t, consumer on-CPU fraction of the interval]
        self.consumer_ns = []  # [(t, consumer threads' ns on a CPU, ns waiting for one)]
        self.ticks = []  # [(t, {name: utime+stime ticks, "machine": busy ticks})]
        self.stop_flag = threading.Event()

    def _files(self):
        sizes = {}
        try:
            for topic in os.scandir(os.path.join(self.workdir, "inprogress")):
                for part in os.scandir(topic.path):
                    try:
                        st = os.stat(os.path.join(part.path, "data.mak"))
                    except OSError:
                        continue
                    sizes[f"{topic.name}-{part.name}"] = (st.st_ino, st.st_size)
        except OSError:
            pass
        return sizes

    def _cpu_ticks(self):
        out = dict(zip(("machine", "machine_kernel"), machine_busy_ticks()))
        for name, pid in self.pids.items():
            st = _stat_fields(f"/proc/{pid}/stat")
            if st:
                out[name] = int(st[1][11]) + int(st[1][12])
        return out

    def _sample_consumer(self, now, tids, prev):
        """Returns the consumer threads' on-CPU ns now; records the fraction since `prev` (t, ns)."""
        stats = [v for v in (_schedstat_ns(self.pids["process"], t) for t in tids) if v is not None]
        ns = sum(v[0] for v in stats)
        self.consumer_ns.append((now, ns, sum(v[1] for v in stats)))
        if prev is not None:
            frac = (ns - prev[1]) / 1e9 / (now - prev[0])
            self.series.append([round(now, 3), round(frac, 3)])
            if frac >= self.busy:
                self.last_busy = now
        return ns

    def run(self):
        tids, prev, prev_files = [], None, {}
        while not self.stop_flag.is_set():
            now = time.monotonic() - self.t0
            self.ticks.append((now, self._cpu_ticks()))
            if self.threads_every and len(self.ticks) % self.threads_every == 0:
                by = cpu_by_family(self.pids["process"])
                if by["process_cpu_s"] is not None:
                    self.last_threads = (now, by)
            if not tids:
                tids = [tid for tid, comm, _ in threads(self.pids["process"]) if comm.startswith(self.consumer)]
            if tids:
                prev = (now, self._sample_consumer(now, tids, prev))
            if self.workdir is not None:
                files = self._files()
                for name in files:
                    self.files_opened.setdefault(name, now)
                if files and self.first_record is None:
                    self.first_record = now
                if any(prev_files.get(name, (None, -1))[0] != ino or prev_files[name][1] < size
                       for name, (ino, size) in files.items()):
                    self.last_write = now
                prev_files = files
            self.stop_flag.wait(self.interval)

    def cores_between(self, start, end):
        """{name: cores} each process (and "machine": all of it) used from `start` to `end` (seconds
        since t0), between its samples nearest those times (a process that exited: its last one);
        a name is left out when its window spans under 2 samples."""
        if start is None or end is None:
            return None
        out = {}
        for name in {n for _, ticks in self.ticks for n in ticks}:
            have = [s for s in self.ticks if name in s[1]]
            a = min(have, key=lambda s: abs(s[0] - start))
            b = min(have, key=lambda s: abs(s[0] - end))
            if b[0] - a[0] >= self.interval * 1.5:
                out[name] = (b[1][name] - a[1][name]) / CLK_TCK / (b[0] - a[0])
        return out

    def consumer_between(self, start, end):
        """(on a CPU, runnable but waiting for a CPU) shares of the time from `start` to `end` for
        the consumer threads (summed), from their schedstat; None without samples."""
        if start is None or end is None or len(self.consumer_ns) < 2:
            return None
        a = min(self.consumer_ns, key=lambda s: abs(s[0] - start))
        b = min(self.consumer_ns, key=lambda s: abs(s[0] - end))
        if b[0] - a[0] < self.interval * 1.5:
            return None
        return [(b[i] - a[i]) / 1e9 / (b[0] - a[0]) for i in (1, 2)]

    def stop(self):
        self.stop_flag.set()
        self.join()
