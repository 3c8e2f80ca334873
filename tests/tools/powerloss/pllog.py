"""Reading a powerloss.so log (see powerloss.c for the record format)."""
import mmap, struct, sys
from collections import Counter

HDR = struct.Struct("<IHHIIQQQQ")
MAGIC = 0x31524C50
OPEN, WRITE, SYNC_BEGIN, SYNC_END, TRUNC, CLOSE, MSYNC, FALLOC, MMAP_W = range(1, 10)
NAMES = {OPEN: "OPEN", WRITE: "WRITE", SYNC_BEGIN: "SYNC_BEGIN", SYNC_END: "SYNC_END", TRUNC: "TRUNC",
         CLOSE: "CLOSE", MSYNC: "MSYNC", FALLOC: "FALLOC", MMAP_W: "MMAP_W"}
F_DURABLE = 1
ALL_FILES = 0xFFFFFFFF


class Rec:
    __slots__ = ("i", "type", "flags", "file", "tid", "seq", "off", "len", "ns", "pos", "end", "seg")

    def __repr__(self):
        return (f"#{self.i} {NAMES.get(self.type, self.type)} file={self.file} off={self.off} "
                f"len={self.len} flags={self.flags} seq={self.seq}")


class Log:
    def __init__(self, path):
        self.f = open(path, "rb")
        self.size = self.f.seek(0, 2)
        self.mm = mmap.mmap(self.f.fileno(), 0, access=mmap.ACCESS_READ) if self.size else b""
        self.recs = []
        self.names = {}           # file id -> name
        pos = 0
        # Processes run one after another can share a log (O_APPEND): each counts seq from 1, so a
        # record's seq is only unique within its process's run of records (seg).
        seg, last_seq, local = 0, 0, {}
        self.by_seq = {}
        while pos + HDR.size <= self.size:
            magic, typ, flags, file, tid, seq, off, ln, ns = HDR.unpack_from(self.mm, pos)
            if magic != MAGIC:
                raise ValueError(f"bad record magic at byte {pos}")
            end = pos + HDR.size + ln
            if end > self.size:
                break             # a record cut short: the log ends here
            r = Rec()
            r.i, r.type, r.flags, r.file, r.tid, r.seq, r.off, r.len, r.ns = len(self.recs), typ, flags, file, tid, seq, off, ln, ns
            r.pos, r.end = pos + HDR.size, end
            if seq <= last_seq:
                seg += 1
                local = {}        # this process's file ids -> the log's (by name)
            last_seq = seq
            if typ == OPEN:
                name = bytes(self.mm[r.pos:end]).decode()
                glob = next((k for k, v in self.names.items() if v == name), len(self.names))
                self.names[glob] = name
                local[file] = glob
            if file != ALL_FILES:
                r.file = local.get(file, file)
            r.seg = seg
            self.by_seq[(seg, seq)] = r.i
            self.recs.append(r)
            pos = end

    def data(self, r):
        return self.mm[r.pos:r.end]

    def file_id(self, name):
        for k, v in self.names.items():
            if v == name:
                return k
        return None

    def index_at_byte(self, b):
        """Number of records wholly inside the first b bytes of the log."""
        lo, hi = 0, len(self.recs)
        while lo < hi:
            mid = (lo + hi) // 2
            if self.recs[mid].end <= b:
                lo = mid + 1
            else:
                hi = mid
        return lo

    def syncs(self, fid):
        """[(begin index, end index)] of the completed syncs that cover file fid."""
        out = []
        for r in self.recs:
            if r.type == SYNC_END and (r.file == fid or r.file == ALL_FILES):
                b = self.by_seq.get((r.seg, r.off))
                if b is not None:
                    out.append((b, r.i))
        return out


def summary(path):
    log = Log(path)
    c = Counter()
    by = Counter()
    for r in log.recs:
        c[(log.names.get(r.file, "*"), NAMES[r.type])] += 1
        if r.type == WRITE:
            by[log.names.get(r.file)] += r.len
    print(f"{path}: {len(log.recs)} records, {log.size} bytes")
    for k, v in sorted(c.items()):
        print(f"  {k[0]:10s} {k[1]:10s} {v}")
    for k, v in by.items():
        print(f"  bytes written to {k}: {v}")
    return log


if __name__ == "__main__":
    summary(sys.argv[1])
