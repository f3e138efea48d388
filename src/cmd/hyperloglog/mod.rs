//! HyperLogLog: PFADD, PFCOUNT, PFMERGE and PFDEBUG on sketches kept in strings, in
//! Redis's format (`sketch`), so a sketch built here counts the same in Redis and back.

pub mod pfadd;
pub mod pfcount;
pub mod pfdebug;
pub mod pfmerge;

pub use redraft_proxy::hll as sketch;

use bytes::Bytes;

use crate::cmd::get_string;
use crate::db::DbRead;
use redraft_proxy::wire::Reply;

/// The sketch at `key` with its expiry: None when missing, Redis's WRONGTYPE when the
/// string is not one.
pub(crate) fn sketch_at(
    db: &dyn DbRead,
    key: &[u8],
    now_ms: u64,
) -> Result<Option<(Bytes, Option<u64>)>, Reply> {
    match get_string(db, key, now_ms)? {
        Some((b, _)) if !sketch::is_hll(&b) => Err(Reply::err(sketch::NOT_HLL)),
        found => Ok(found),
    }
}

pub(crate) fn corrupt() -> Reply {
    Reply::err(sketch::CORRUPT)
}

#[cfg(test)]
mod tests {
    use super::sketch;
    use crate::cmd::testutil::*;
    use redraft_proxy::wire::Reply;

    #[test]
    fn pfadd_pfcount_pfmerge() {
        let mut db = db_with(&[("s", "plain")]);
        let not_hll = err(sketch::NOT_HLL);
        check(
            &mut db,
            &[
                (&["PFCOUNT", "h"], int(0)),
                (&["PFADD", "h", "a", "b", "c"], int(1)),
                (&["PFADD", "h", "a"], int(0)),
                (&["PFADD", "h"], int(0)),
                (&["PFADD", "h2", "c", "d", "e"], int(1)),
                (&["PFCOUNT", "h"], int(3)),
                (&["PFCOUNT", "h", "h2", "missing"], int(5)),
                (&["PFMERGE", "m", "h", "h2"], ok()),
                (&["PFCOUNT", "m"], int(5)),
                // redis-server 7.0.15 gave these runs for the same commands.
                (
                    &["PFDEBUG", "DECODE", "m"],
                    bulk("Z:7292 v:1,1 Z:1143 v:1,1 Z:4274 v:2,1 Z:2445 v:1,1 Z:622 v:1,1 Z:603"),
                ),
                (&["PFDEBUG", "ENCODING", "m"], Reply::status("sparse")),
                (&["PFDEBUG", "TODENSE", "m"], int(1)),
                (&["PFDEBUG", "TODENSE", "m"], int(0)),
                (&["PFDEBUG", "ENCODING", "m"], Reply::status("dense")),
                (
                    &["PFDEBUG", "DECODE", "m"],
                    err("ERR HLL encoding is not sparse"),
                ),
                (&["PFCOUNT", "m"], int(5)),
                (&["PFADD", "m", "f"], int(1)),
                (&["PFCOUNT", "m"], int(6)),
                (
                    &["PFDEBUG", "bogus", "m"],
                    err("ERR Unknown PFDEBUG subcommand 'bogus'"),
                ),
                (
                    &["PFDEBUG", "GETREG", "nope"],
                    err("ERR The specified key does not exist"),
                ),
                // An empty PFADD creates the key; PFMERGE of nothing too.
                (&["PFADD", "e"], int(1)),
                (&["PFCOUNT", "e"], int(0)),
                (&["PFMERGE", "e2"], ok()),
                (&["EXISTS", "e2"], int(1)),
                (&["PFADD", "s", "x"], not_hll.clone()),
                (&["PFCOUNT", "s"], not_hll.clone()),
                (&["PFCOUNT", "h", "s"], not_hll.clone()),
                (&["PFMERGE", "h", "s"], not_hll.clone()),
                (&["PFDEBUG", "ENCODING", "s"], not_hll),
                // The destination keeps its expiry.
                (&["EXPIRE", "h", "100"], int(1)),
                (&["PFMERGE", "h", "h2"], ok()),
                (&["PFADD", "h", "zz"], int(1)),
                (&["TTL", "h"], int(100)),
            ],
        );
    }

    #[test]
    fn a_dense_sketch_is_updated_in_place_unless_shared() {
        let mut db = db_with(&[]);
        run(&mut db, &["PFADD", "d", "a"]);
        run(&mut db, &["PFDEBUG", "TODENSE", "d"]);
        let held = run(&mut db, &["GET", "d"]);
        assert_eq!(run(&mut db, &["PFADD", "d", "b", "c"]), int(1));
        assert_ne!(run(&mut db, &["GET", "d"]), held, "the sketch changed");
        assert_eq!(run(&mut db, &["PFCOUNT", "d"]), int(3));
        // The reply held before the update still shows the old sketch.
        let Reply::Bulk(old) = held else { panic!() };
        let mut max = vec![0; sketch::REGISTERS];
        sketch::merge_into(&mut max, &old).unwrap();
        assert_eq!(sketch::count_registers(&max), 1);
    }
}
