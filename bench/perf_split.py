"""bench/perf_split.py — where the CPU of one operation goes, from a profile.

Usage: /usr/bin/python3 bench/perf_split.py SCRIPT_FILE PIDS OPS PERIOD_US LABEL
SCRIPT_FILE is `perf script -F comm,pid,ip,sym` output of a `perf record -a -g
-e cpu-clock -c PERIOD_NS` run (one sample = PERIOD_US µs of CPU); PIDS a
comma-separated list of the stack's processes (other processes on the machine
are left out); OPS the operations the stack completed while it was recorded; LABEL
the operation's name (login, request).
Prints one line per part: CPU ms per operation and its share. PostgreSQL's
time is split by what its call stacks show.
"""
import collections
import sys

# (marker that must all be on the stack, marker that must not be, name);
# the first rule that matches wins.
PG_RULES = [
    (("plpgsql_call_handler", "fmgr_sql"), (),
     "postgres: SQL functions called inside PL/pgSQL, re-planned at every call"),
    (("fmgr_sql",), (),
     "postgres: SQL-language functions called by the statement, planned at every call"),
    (("plpgsql_call_handler",), (), "postgres: PL/pgSQL bodies (cached plans)"),
    (("CommitTransactionCommand",), (), "postgres: commit (WAL, locks)"),
    (("exec_parse_message",), (), "postgres: parse/plan of the statements sent"),
    (("exec_bind_message",), (), "postgres: bind (plan choice) of prepared statements"),
    (("PostgresMain",), (), "postgres: rest of the backend (protocol, executor)"),
    ((), (), "postgres: outside any backend call (idle wait, kernel)"),
]


def samples(path):
    head, stack = None, []
    with open(path, errors="replace") as f:
        for line in f:
            if not line.strip():
                if head is not None:
                    yield head, stack
                head, stack = None, []
            elif line[0] not in " \t":
                parts = line.split()
                # "comm pid": comm may hold spaces; the pid is the last field.
                head = (" ".join(parts[:-1]), parts[-1])
            else:
                sym = line.split(None, 1)
                stack.append(sym[1].strip() if len(sym) > 1 else "")
    if head is not None:
        yield head, stack


def classify(comm, stack):
    if comm != "postgres":
        return comm
    text = " ".join(stack)
    for need, avoid, name in PG_RULES:
        if all(m in text for m in need) and not any(m in text for m in avoid):
            return name
    return "postgres"


def main():
    if len(sys.argv) != 6:
        print(__doc__.strip().splitlines()[2], file=sys.stderr)
        return 2
    path, pids, ops, period_us, label = sys.argv[1:]
    wanted = {p for p in pids.split(",") if p}
    ops, period_us = float(ops), float(period_us)
    parts = collections.Counter()
    for (comm, pid), stack in samples(path):
        if pid in wanted:
            parts[classify(comm, stack)] += 1
    total = sum(parts.values())
    if total == 0 or ops <= 0:
        print("  profile: no samples of the stack's processes, or no operations in the window",
              file=sys.stderr)
        return 1

    def per_op(n):
        return n * period_us / 1000.0 / ops

    print(f"  profile: {per_op(total):.3f} ms CPU per {label} in the stack's processes"
          f" ({int(ops)} {label}s in the window)")
    for name, n in parts.most_common():
        if n * 100 < total:  # under 1 %
            continue
        print(f"    {per_op(n):7.3f} ms {100.0 * n / total:5.1f} %  {name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
