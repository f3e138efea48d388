#!/usr/bin/env python3
"""The same random commands to a redis-server and to redraft, replies compared byte for byte.

    python3 compat/test_differential.py <redis-server port> <redraft port> [seed] [count] [bitmaps|strings|keyspace|hll|transactions|fuzz|glob|commands] [resp3] [pipeline=N] [crossslot]

`bitmaps` covers the bitmap commands (SETBIT, GETBIT, BITCOUNT, BITPOS, BITOP, BITFIELD[_RO]) with
their edge cases: negative and crossed ranges, BYTE|BIT, `#n` offsets, every overflow
mode, bad types, offsets and values. `strings` covers the string and expiry commands whose
replies do not depend on the clock (SET's options, GETEX, APPEND, SETRANGE, GETRANGE, the
INCRs, INCRBYFLOAT, MSETNX, EXPIRE and EXPIREAT's conditions, LCS), with numeric-looking values. `keyspace`
covers DEL/EXISTS/TOUCH, TYPE, RENAME[NX], COPY, the EXPIRE family and EXPIRETIME with
absolute times, PERSIST, DUMP/RESTORE, OBJECT ENCODING, MOVE and GETEX EXAT; compare it
with a redis-server started with `--databases 1`, as redraft has one database. `hll` covers
PFADD, PFCOUNT, PFMERGE and PFDEBUG over sparse, dense and corrupt sketches; GET replies of
sketches are compared with their 8 cache bytes blanked (redraft's PFCOUNT does not store
its count back, see README). `transactions` covers MULTI/EXEC/DISCARD/WATCH/UNWATCH with
commands refused when queued (EXECABORT), failing when run, nested MULTI and WATCH inside
MULTI; every write stores a new value, as redraft's WATCH compares fingerprints where Redis
counts a rewrite of the same value as a change. `glob` compares KEYS and full SCAN MATCH
iterations (as sorted lists) for random patterns over keys of glob's special characters.
`fuzz` and `glob` start from FLUSHALL; compare fuzz with a redis-server in cluster mode. Each side starts from an empty database; the keys
share one hash tag, so redraft's port may be the proxy's or the owning node's.
"""

import random
import socket
import sys


class Conn:
    def __init__(self, port):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=30)
        self.buf = b""

    def more(self):
        data = self.sock.recv(65536)
        if not data:
            raise EOFError("connection closed")
        self.buf += data

    def line(self):
        while b"\r\n" not in self.buf:
            self.more()
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line

    def read(self):
        line = self.line()
        kind, rest = line[:1], line[1:]
        if kind == b"$" and int(rest) >= 0:
            n = int(rest)
            while len(self.buf) < n + 2:
                self.more()
            data, self.buf = self.buf[:n], self.buf[n + 2:]
            return line + b"|" + data
        if kind in (b"=", b"!"):  # RESP3 verbatim string, blob error
            n = int(rest)
            while len(self.buf) < n + 2:
                self.more()
            data, self.buf = self.buf[:n], self.buf[n + 2:]
            return line + b"|" + data
        if kind in (b"*", b"~", b">") and int(rest) >= 0:
            return [line] + [self.read() for _ in range(int(rest))]
        if kind == b"%":  # RESP3 map
            return [line] + [self.read() for _ in range(2 * int(rest))]
        return line

    @staticmethod
    def encode(args):
        out = b"*%d\r\n" % len(args)
        for a in args:
            a = a.encode() if isinstance(a, str) else a
            out += b"$%d\r\n%s\r\n" % (len(a), a)
        return out

    def call(self, *args):
        self.sock.sendall(self.encode(args))
        return self.read()

    def pipeline(self, cmds):
        """Sends every command in one write, then reads their replies in order."""
        self.sock.sendall(b"".join(self.encode(c) for c in cmds))
        return [self.read() for _ in cmds]


KEYS = ["{bd}a", "{bd}b", "{bd}c"]


def junk():
    return random.choice(["x", "", "1.5", "99999999999999999999", "-0", "+1", " 1", "#2", "#-1"])


def offset():
    r = random.random()
    if r < 0.05:
        return junk()
    if r < 0.15:
        return "#%d" % random.randint(0, 20)
    if r < 0.18:
        # Out of range: past 2^32 bits, negative, or a field number past it.
        return random.choice(["4294967296", "-1", "#4294967296", "#-1"])
    return str(random.randint(0, 100))


def bf_type():
    if random.random() < 0.05:
        return random.choice(["I8", "u64", "i0", "i65", "u", "x8", "i", "u-1", "i08"])
    return random.choice("iu") + str(random.choice([1, 2, 3, 4, 5, 7, 8, 9, 13, 16, 31, 32, 33, 63, 64]))


def value():
    r = random.random()
    if r < 0.05:
        return junk()
    if r < 0.2:
        return random.choice(["9223372036854775807", "-9223372036854775808", "18446744073709551615", "-1", "0"])
    return str(random.randint(-300, 300))


def range_args(n):
    args = [str(random.randint(-30, 30)) if random.random() > 0.05 else junk() for _ in range(min(n, 2))]
    if n >= 3:
        args.append(random.choice(["BIT", "BYTE", "bit", "byte", "BITS"]))
    if n >= 4:
        args.append("x")
    return args


def command():
    k = random.choice(KEYS)
    r = random.random()
    if r < 0.12:
        off = offset() if random.random() < 0.2 else str(random.randint(0, 90))
        return ["SETBIT", k, off, random.choice(["0", "1", "1", "0", "2", "x", "-1"])]
    if r < 0.22:
        return ["GETBIT", k, random.choice([offset(), "4294967295"])]
    if r < 0.34:
        return ["BITCOUNT", k] + range_args(random.choice([0, 1, 2, 2, 3, 3, 4]))
    if r < 0.5:
        bit = random.choice(["0", "1", "1", "0", "2", "x"])
        return ["BITPOS", k, bit] + range_args(random.choice([0, 1, 2, 3, 3, 4]))
    if r < 0.62:
        op = random.choice(["AND", "OR", "XOR", "NOT", "not", "nand"])
        srcs = random.sample(KEYS + ["{bd}none"], random.choice([1, 1, 2, 3]))
        return ["BITOP", op, random.choice(KEYS)] + srcs
    if r < 0.66:
        return ["SET", k, bytes(random.randint(0, 255) for _ in range(random.randint(0, 12)))]
    if r < 0.68:
        # Absolute expiry, read back as such: a TTL's seconds depend on the clock.
        return ["SET", k, "x", "EXAT", "4102444800"]
    if r < 0.70:
        return ["EXPIRETIME", k]
    if r < 0.72:
        return ["DEL", k]
    args = ["BITFIELD_RO" if random.random() < 0.2 else "BITFIELD", k]
    for _ in range(random.choice([0, 1, 2, 3, 4])):
        s = random.random()
        if s < 0.35:
            args += ["GET", bf_type(), offset()]
        elif s < 0.6:
            args += ["SET", bf_type(), offset(), value()]
        elif s < 0.85:
            args += ["INCRBY", bf_type(), offset(), value()]
        elif s < 0.97:
            args += ["OVERFLOW", random.choice(["WRAP", "SAT", "FAIL", "fail", "sat", "nope"])]
        else:
            args += [random.choice(["GET", "SET", "INCRBY", "OVERFLOW", "FOO"])]
    return args


NUMS = ["0", "1", "-1", "10", "-5", "9223372036854775807", "-9223372036854775808", "1.5", " 3",
        "3 ", "+4", "007", "1e3", "-0", "abc", "", "99999999999999999999", "0x10"]


def string_value():
    if random.random() < 0.5:
        return random.choice(NUMS)
    return bytes(random.randint(0, 255) for _ in range(random.randint(0, 10)))


def string_command():
    """String and expiry commands whose replies do not depend on the clock."""
    k = random.choice(KEYS)
    r = random.random()
    if r < 0.15:
        args = ["SET", k, string_value()]
        for _ in range(random.choice([0, 1, 1, 2, 3])):
            args += random.choice([["NX"], ["XX"], ["GET"], ["KEEPTTL"], ["EX", random.choice(["100", "0", "-1", "x"])],
                                   ["PX", "100000"], ["EXAT", "9999999999"], ["PXAT", "0"], ["BOGUS"]])
        return args
    if r < 0.2:
        return ["GETEX", k] + random.choice([[], ["PERSIST"], ["EX", "100"], ["PX", "-5"], ["EX"], ["EX", "100", "PX", "1"]])
    if r < 0.25:
        return ["GETDEL", k]
    if r < 0.32:
        return ["APPEND", k, string_value()]
    if r < 0.36:
        return ["STRLEN", k]
    if r < 0.44:
        return ["GETRANGE", k, str(random.randint(-15, 15)), str(random.randint(-15, 15))]
    if r < 0.52:
        off = random.choice([str(random.randint(0, 14)), "-1", "x", "536870912"])
        return ["SETRANGE", k, off, random.choice([b"", b"Z", b"ab", b"xyz12"])]
    if r < 0.64:
        name = random.choice(["INCR", "DECR", "INCRBY", "DECRBY"])
        return [name, k] + ([random.choice(NUMS)] if name.endswith("BY") else [])
    if r < 0.72:
        huge = ["1e30", "-3.5e25", "1e308", "-2.5e100", "1e4000", "1.1e4932", "1.2e4932", "1e5000", "1e-4940", "1e-5000"]
        return ["INCRBYFLOAT", k, random.choice(NUMS + huge + ["0.1", "-1.25", "inf", "-inf", "nan", "5.0e-3", "3.0"])]
    if r < 0.78:
        return ["MSETNX"] + [x for key in random.sample(KEYS, random.randint(1, 3)) for x in (key, string_value())]
    if r < 0.84:
        # GT and LT only with absolute times: two relative expiries compare by the
        # milliseconds between the commands, which differ between the two servers.
        if random.random() < 0.5:
            return ["EXPIRE", k, random.choice(["0", "-1", "x"])] + random.choice([[], ["NX"], ["XX"], ["NX", "XX"], ["FOO"]])
        at = random.choice(["4102444800", "4102444900", "1", "x"])
        return ["EXPIREAT", k, at] + random.choice([[], ["NX"], ["XX"], ["GT"], ["LT"], ["NX", "XX"], ["FOO"]])
    if r < 0.88:
        return ["PERSIST", k]
    if r < 0.92:
        return ["LCS", KEYS[0], KEYS[1]] + random.choice([[], ["LEN"], ["IDX"], ["IDX", "WITHMATCHLEN"], ["IDX", "MINMATCHLEN", "1"]])
    if r < 0.96:
        return ["GETSET", k, string_value()]
    return ["SETNX", k, string_value()]


def keyspace_command():
    """Keyspace commands, with absolute expiry times so that no reply depends on the clock."""
    k, k2 = random.choice(KEYS), random.choice(KEYS)
    at = random.choice(["4102444800", "4102444900", "1", "0", "-5", "x"])
    r = random.random()
    if r < 0.12:
        # At most 20 bytes: Redis's DUMP LZF-compresses longer strings, and redraft's
        # encoder picks other matches (README), so their payloads differ.
        return ["SET", k, random.choice(NUMS[:6] + ["hello", "a" * 20])]
    if r < 0.18:
        return ["SET", k, "v", "EXAT", random.choice(["4102444800", "4102444950"])]
    if r < 0.26:
        return [random.choice(["DEL", "UNLINK", "EXISTS", "TOUCH"])] + random.sample(KEYS, random.randint(1, 3)) * random.choice([1, 1, 2])
    if r < 0.3:
        return ["TYPE", k]
    if r < 0.38:
        return [random.choice(["RENAME", "RENAMENX"]), k, k2]
    if r < 0.46:
        return ["COPY", k, k2] + random.choice([[], ["REPLACE"], ["DB", "0"], ["DB", "1"], ["DB", "x"], ["REPLACE", "REPLACE"], ["FOO"]])
    if r < 0.58:
        name = random.choice(["EXPIREAT", "PEXPIREAT", "EXPIRE", "PEXPIRE"])
        if name.endswith("AT"):
            arg = at if name == "EXPIREAT" else (at + "000" if at.lstrip("-").isdigit() else at)
        else:
            arg = random.choice(["0", "-1", "x", "9223372036854775807", "-9223372036854775808"])
        return [name, k, arg] + random.choice([[], [], ["NX"], ["XX"], ["GT"], ["LT"], ["GT", "LT"], ["NX", "GT"]])
    if r < 0.66:
        return [random.choice(["EXPIRETIME", "PEXPIRETIME"]), k]
    if r < 0.7:
        return ["PERSIST", k]
    if r < 0.76:
        return ["DUMP", k]
    if r < 0.8:
        return ["OBJECT", "ENCODING", k]
    if r < 0.84:
        return ["MOVE", k, random.choice(["0", "1", "x"])]
    if r < 0.88:
        return ["RESTORE", k, "0", random.choice([b"\x00\x01a\n\x00\xbf\xfe\xef\x9b\x8f6}\xb4", b"\x00\x01a\n\x00\xbf\xfe\xef\x9b\x8f6}\xb5", b"bad"])] + random.choice([[], ["REPLACE"]])
    if r < 0.92:
        return ["GETEX", k, "EXAT", at]
    return ["GET", k]


class Txn:
    """The transactions family's state: whether MULTI is open (only to bias the draw) and a
    counter that makes every written value new, so each write changes its key (redraft's
    WATCH compares fingerprints; Redis counts a rewrite of the same value as a change)."""
    open = False
    n = 0


def txn_write(k):
    Txn.n += 1
    v = "v%d" % Txn.n
    return random.choice([
        ["SET", k, v],
        ["SET", k, str(Txn.n)],
        ["INCR", k],
        ["INCRBY", k, "7"],
        ["APPEND", k, v],
        ["DEL", k],
        ["MSET", k, v, random.choice(KEYS), v + "m"],
        ["SET", k, v, "NX"],
        ["SET", k, v, "XX", "GET"],
        ["GETDEL", k],
    ])


def txn_command():
    """MULTI/EXEC/DISCARD/WATCH/UNWATCH around reads and writes, with commands refused when
    queued (unknown, wrong arity) and ones that fail when run (a syntax error, INCR of a
    string), MULTI nested, EXEC and DISCARD without MULTI, WATCH inside MULTI."""
    k = random.choice(KEYS)
    r = random.random()
    if not Txn.open:
        if r < 0.25:
            Txn.open = True
            return ["MULTI"]
        if r < 0.40:
            return ["WATCH"] + random.sample(KEYS, random.randint(1, 3))
        if r < 0.45:
            return ["UNWATCH"]
        if r < 0.48:
            return [random.choice(["EXEC", "DISCARD", "exec"])]
        if r < 0.85:
            return txn_write(k)
        return random.choice([["GET", k], ["MGET"] + KEYS, ["EXISTS", k]])
    if r < 0.12:
        Txn.open = False
        return ["EXEC"]
    if r < 0.16:
        Txn.open = False
        return ["DISCARD"]
    if r < 0.19:
        return ["MULTI"]
    if r < 0.22:
        return ["WATCH", k]
    if r < 0.23:
        return ["UNWATCH"]
    if r < 0.26:
        return random.choice([["GET"], ["NOSUCHCMD", k], ["SET", k], ["INCR"]])
    if r < 0.30:
        return random.choice([["SET", k, "x", "EX", "0"], ["SET", k, "x", "BAD"], ["INCRBY", k, "x"], ["SET", k, "x", "NX", "XX"]])
    if r < 0.36:
        return random.choice([["PING"], ["ECHO", "hi"], ["PING", "x"]])
    if r < 0.75:
        return txn_write(k)
    return random.choice([["GET", k], ["MGET"] + KEYS, ["EXISTS"] + KEYS, ["STRLEN", k], ["GETRANGE", k, "0", "2"]])


FUZZ_COMMANDS = """GET SET SETNX GETEX GETDEL GETSET APPEND STRLEN SETRANGE GETRANGE SUBSTR
INCR DECR INCRBY DECRBY INCRBYFLOAT MGET MSET MSETNX LCS SETBIT GETBIT BITCOUNT BITPOS BITOP
BITFIELD BITFIELD_RO PFADD PFMERGE DEL UNLINK EXISTS TOUCH TYPE RENAME RENAMENX COPY EXPIREAT
PEXPIREAT PERSIST EXPIRETIME PEXPIRETIME OBJECT ECHO PING RESTORE""".split()

FUZZ_ARGS = ["{bd}a", "{bd}b", "{bd}c", "0", "1", "-1", "2", "100", "-100", "x", "", "1.5",
             "9223372036854775807", "-9223372036854775808", "18446744073709551616", "NX", "XX",
             "GT", "LT", "GET", "KEEPTTL", "EXAT", "PXAT", "4102444800", "4102444800000",
             "PERSIST", "BYTE", "BIT", "LEN", "IDX", "MINMATCHLEN", "WITHMATCHLEN", "REPLACE",
             "ABSTTL", "DB", "ENCODING", "REFCOUNT", "HELP", "AND", "OR", "NOT", "u8", "i5", "#1",
             "OVERFLOW", "SAT", "INCRBY", "FREQ", "\x00\xff", "a\x00b", "EX", "PX",
             "-0", "+1", " 1", "1e3", "0x10", "3.0", "inf", "-inf", "nan", "1e309", "18446744073709551615",
             "x" * 600, "WRAP", "FAIL", "i64", "u63", "u64", "i65", "#-1", "-4294967296", "4294967296", "BITS"]


def fuzz_command():
    """Compare with a redis-server in cluster mode that serves every slot, as any argument
    may be a key: a command's keys in several slots answer CROSSSLOT at both.

    A command of the string, bitmap, HyperLogLog and keyspace families with 0-5 arguments
    drawn from keys, numbers and every option keyword: arity errors, syntax errors and the
    order in which each command checks its arguments. Left out: EX/PX/EXPIRE with relative
    times (replies would depend on the clock), DUMP (another LZF encoder), PFCOUNT (which
    stores its count in the value at Redis) and OBJECT IDLETIME (not kept here); see
    README. One in ten draws asks COMMAND GETKEYS[ANDFLAGS] of a random command line
    instead."""
    name = random.choice(FUZZ_COMMANDS)
    args = [random.choice(FUZZ_ARGS) for _ in range(random.choice([0, 1, 1, 2, 2, 3, 3, 4, 5]))]
    if random.random() < 0.1:
        # Where the command table says the keys are; nothing runs, so any command goes.
        name = random.choice(FUZZ_COMMANDS + ["PFCOUNT", "DUMP", "EXPIRE", "PEXPIRE", "TTL", "MIGRATE", "SETEX", "MEMORY", "WATCH", "NOSUCH"])
        return ["COMMAND", random.choice(["GETKEYS", "GETKEYSANDFLAGS"]), name] + args + random.choice([[], ["KEYS", "{bd}a", "{bd}b"]])
    if name in ("MGET", "MSET", "DEL", "UNLINK", "EXISTS", "TOUCH"):
        # The proxy splits these across slots, where Redis Cluster answers CROSSSLOT.
        args = ["{bd}" + a for a in args]
    # A relative expiry would be read back with the milliseconds between the two servers.
    if "EX" in args or "PX" in args:
        args = [a for a in args if a not in ("EX", "PX")]
    return [name] + args


GLOB_CHARS = "ab-^]\\[*?xyz"


def glob_command():
    """KEYS and SCAN MATCH with random glob patterns (classes, ranges, negation, escapes,
    unterminated classes) over keys of the same odd characters: the results are compared
    as sorted lists, since the two servers keep keys in different orders."""
    if random.random() < 0.3:
        key = "".join(random.choice(GLOB_CHARS) for _ in range(random.randint(0, 5)))
        return ["SET", key, "v"]
    pattern = "".join(random.choice(GLOB_CHARS) for _ in range(random.randint(0, 6)))
    if random.random() < 0.5:
        return ["KEYS", pattern]
    return ["SCAN*", pattern]


def glob_sorted(reply):
    """A KEYS reply as a sorted list of keys."""
    return sorted(reply[1:]) if isinstance(reply, list) else reply


def scan_all(conn, pattern):
    """Every key a full SCAN … MATCH iteration returns, sorted (cursors are the server's
    own: redraft's walks the groups' slots)."""
    keys, cursor = [], b"0"
    while True:
        reply = conn.call("SCAN", cursor, "MATCH", pattern, "COUNT", "1000")
        if not isinstance(reply, list):
            return reply
        cursor = reply[1].split(b"|", 1)[1]
        keys += reply[2][1:]
        if cursor == b"0":
            return sorted(set(keys))


def hll_value():
    """A sketch in Redis's format, valid or not, to SET."""
    hdr = b"HYLL"
    empty = hdr + b"\x01\0\0\0" + b"\0" * 8 + b"\x7f\xff"
    return random.choice([
        empty,
        hdr + b"\x01\0\0\0" + (12345).to_bytes(8, "little") + b"\x7f\xff",  # a valid cache
        hdr + b"\x01\0\0\0" + b"\0" * 7 + b"\x80" + b"\x7f\x00",  # runs short of 16384
        hdr + b"\x01\0\0\0" + b"\0" * 7 + b"\x80" + b"\x7f\xff\x80",  # runs past it
        hdr + b"\x01\0\0\0" + b"\0" * 7 + b"\x80" + b"\x40\x10\x84\x7f\xed",  # VALs
        hdr + b"\x00\0\0\0" + b"\0" * 7 + b"\x80" + bytes(random.randrange(64) for _ in range(12288)),
        hdr + b"\x00\0\0\0" + b"\0" * 8 + b"\0" * 100,  # dense of the wrong size
        hdr + b"\x02\0\0\0" + b"\0" * 8 + b"\x7f\xff",  # unknown encoding
        b"HYLX" + empty[4:],
        b"HYLL",
        b"plain",
    ])


def hll_elements():
    n = random.choice([0, 1, 1, 2, 5, 20, 200])
    top = random.choice([10, 1000, 30000])
    return [random.choice(["e%d" % random.randrange(top), str(random.randrange(top)), ""]) for _ in range(n)]


# Keys in other slots than KEYS' (option `crossslot`, through the proxy only).
KEYS_X = []


def hll_command():
    """HyperLogLog commands, over sparse and dense sketches and broken ones. With
    `crossslot`, PFCOUNT also counts unions of keys in several slots, which the proxy
    counts itself (PFMERGE keeps to one slot: a write needs one)."""
    k = random.choice(KEYS + KEYS_X)
    r = random.random()
    if r < 0.40:
        return ["PFADD", k] + hll_elements()
    if r < 0.55:
        return ["PFCOUNT"] + random.sample(KEYS + KEYS_X, random.randint(1, 3))
    if r < 0.63:
        k = random.choice(KEYS)
        return ["PFMERGE", k] + random.sample(KEYS, random.randint(0, 3))
    if r < 0.75:
        return ["PFDEBUG", random.choice(["ENCODING", "DECODE", "GETREG", "TODENSE", "encoding", "nope"]), k]
    if r < 0.80:
        return ["SET", k, hll_value()]
    if r < 0.83:
        return ["DEL", k]
    if r < 0.86:
        return ["PEXPIREAT", k, "4102444800000"]
    if r < 0.89:
        return ["PEXPIRETIME", k]
    if r < 0.92:
        return ["STRLEN", k]
    return ["GET", k]


def hll_masked(reply):
    """A GET reply with a sketch's cached cardinality blanked: redraft's PFCOUNT does not
    store it back (it stays a read), Redis's does."""
    if isinstance(reply, bytes) and reply.startswith(b"$") and b"|HYLL" in reply[:12]:
        head, data = reply.split(b"|", 1)
        if len(data) >= 16:
            return head + b"|" + data[:8] + b"?" * 8 + data[16:]
    return reply


def compare_command_tables(ref, us):
    """COMMAND INFO and COMMAND DOCS of every command and subcommand both servers have.
    Containers are compared through their subcommands (Redis lists those in its hash
    table's order); CLUSTER FAILOVER's summary says what redraft does instead."""
    def names(c):
        return {x.split(b"|", 1)[1] for x in c.call("COMMAND", "LIST")[1:]}
    containers = {b"acl", b"client", b"cluster", b"command", b"config", b"latency", b"memory", b"object", b"slowlog"}
    common = sorted((names(ref) & names(us)) - containers)
    differences = 0
    for name in common:
        for sub in ("INFO", "DOCS"):
            if sub == "DOCS" and name == b"cluster|failover":
                continue
            want, got = ref.call("COMMAND", sub, name), us.call("COMMAND", sub, name)
            if want != got:
                differences += 1
                print(f"DIFF COMMAND {sub} {name}: redis {want}, redraft {got}"[:600])
    print(f"differential (commands): {len(common)} commands' INFO and DOCS, {differences} differences")
    sys.exit(1 if differences else 0)


def main():
    """Options after the family: `resp3` (both connections after HELLO 3), `pipeline=N`
    (commands sent in batches of 1 to N, replies read after each batch), `crossslot`
    (the hll family's PFCOUNT of keys in several slots)."""
    redis_port, redraft_port = int(sys.argv[1]), int(sys.argv[2])
    random.seed(int(sys.argv[3]) if len(sys.argv) > 3 else 1)
    count = int(sys.argv[4]) if len(sys.argv) > 4 else 3000
    family = sys.argv[5] if len(sys.argv) > 5 else "bitmaps"
    opts = sys.argv[6:]
    depth = next((int(o.split("=")[1]) for o in opts if o.startswith("pipeline=")), 1)
    if "crossslot" in opts:
        KEYS_X.extend(["hx:1", "hx:2", "hx:3"])
    ref, us = Conn(redis_port), Conn(redraft_port)
    if family == "commands":
        compare_command_tables(ref, us)
    for c in (ref, us):
        if "resp3" in opts:
            c.call("HELLO", "3")  # the server's own map: not compared
        if family in ("fuzz", "glob"):
            got = c.call("FLUSHALL")
            assert got == b"+OK", f"FLUSHALL: {got}"
        else:
            for k in KEYS + KEYS_X:
                c.call("DEL", k)
    draw = {"bitmaps": command, "strings": string_command, "keyspace": keyspace_command,
            "hll": hll_command, "transactions": txn_command, "fuzz": fuzz_command,
            "glob": glob_command}[family]
    differences = done = 0
    while done < count:
        batch = []
        for _ in range(min(random.randint(1, depth), count - done)):
            batch.append(draw())
            done += 1
            if random.random() < 0.05 and not Txn.open:
                batch += [["GET", k] for k in KEYS]
        if batch[0][0] == "SCAN*":
            want, got = scan_all(ref, batch[0][1]), scan_all(us, batch[0][1])
            if want != got:
                differences += 1
                if differences <= 10:
                    print(f"DIFF SCAN MATCH {batch[0][1]!r}: redis {want}, redraft {got}"[:600])
            continue
        for cmd, want, got in zip(batch, ref.pipeline(batch), us.pipeline(batch)):
            if family == "fuzz" and cmd[0] == "OBJECT":
                # A string built by APPEND, SETRANGE, PFADD … is `raw` at Redis whatever
                # its length; redraft keeps no such history (README).
                want, got = [x.replace(b"$6|embstr", b"$3|raw") if isinstance(x, bytes) else x for x in (want, got)]
            if family == "glob":
                want, got = glob_sorted(want), glob_sorted(got)
            if family == "hll":
                want, got = [hll_masked(x) for x in ([want] if not isinstance(want, list) else want)], [hll_masked(x) for x in ([got] if not isinstance(got, list) else got)]
            if want != got:
                differences += 1
                if differences <= 10:
                    print(f"DIFF {cmd}: redis {want}, redraft {got}"[:600])
    mode = " ".join(opts)
    print(f"differential ({family}{' ' + mode if mode else ''}): {count} commands, {differences} differences")
    sys.exit(1 if differences else 0)


main()
