"""Offline registry index and writers that do not keep it: an airlock from before the index (or of an
older index format) can still open a cache and change it, and leaves the index as it was.  Here
such a writer is lmdb_probe deleting a package document's meta entry, as an older airlock's purge
or eviction does (meta goes, regidx stays).  airlock vouches for the index in every transaction it
commits (the format value carries the transaction's id, cache/store.c regidx_stamp):
  - at start, an index not vouched for by the last transaction is rebuilt: the deleted version
    leaves Kibana's list and the deprecation notice its name carries falls back to an older one;
  - while airlock runs beside such a writer, its next commit takes the format away (queries stop
    trusting the per-name records) and the next start rebuilds.
Answers are compared, byte for byte, with the old way's (tests/tools/registry_direct.c) over the
documents the cache holds.  Before the guard both steps failed: the deleted version was still
listed, with its notice on every version of its name."""
import hashlib, os, sys
sys.path.insert(0, os.path.dirname(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
from harness import Airlock, Case, curl, eq, fail, main
from test_registry_index import Probe
from test_registry_name_record import answers, catalogue, pkg, record, serve

BASE = "https://epr.elastic.co"


def meta_key(d):
    return hashlib.sha256(f"{BASE}/package/{d['name']}/{d['version']}/".encode()).hexdigest()


def format_value(probe):
    out = probe.run("get", "regidx", b"\0format".hex()).strip()
    return None if out == "absent" else bytes.fromhex(out)


def test():
    docs = catalogue()
    with Case() as (up, al, tmp):
        probe = Probe(tmp, al.cache)
        for d in docs:
            serve(up, d)
            eq(curl(al, f"/package/{d['name']}/{d['version']}/").status, 200, "fill")
        al.stop()
        fv = format_value(probe)
        if fv is None or len(fv) != 12 or int.from_bytes(fv[:4], "little") != 5:
            fail(f"the index's format value: {fv!r} (want format 5 and the last writer's transaction id)")

        # An older airlock purges apache 1.2.0, the newest deprecated apache: meta goes, regidx stays.
        gone = next(d for d in docs if d["name"] == "apache" and d["version"] == "1.2.0")
        probe.run("del", "meta", meta_key(gone))
        docs.remove(gone)
        off = Airlock(tmp, up, offline=True)
        try:
            answers(off, tmp, docs, "after a writer that keeps no index")
        finally:
            off.stop()
        eq(record(probe, "apache")[0], "1.0.0", "apache's record after the rebuild")

        # The same beside a running airlock: its next commit (a new document) notices.
        on = Airlock(tmp, up)
        try:
            gone = next(d for d in docs if d["name"] == "nginx" and d["version"] == "1.0.0")
            probe.run("del", "meta", meta_key(gone))
            docs.remove(gone)
            new = pkg("zeek", "2.0.0", 13)
            serve(up, new)
            eq(curl(on, "/package/zeek/2.0.0/").status, 200, "a document admitted after the foreign write")
            docs.append(new)
            if format_value(probe) is not None:
                fail("airlock's first commit after a foreign one must take the index's format away")
        finally:
            on.stop()
        off = Airlock(tmp, up, offline=True)
        try:
            answers(off, tmp, docs, "after a writer that keeps no index, beside a running airlock")
        finally:
            off.stop()
        eq(record(probe, "nginx"), None, "nginx has no deprecated version left")


if __name__ == "__main__":
    main(test)
