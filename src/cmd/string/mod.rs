//! String commands (Redis's t_string.c). Values are `Data::Str`; integers are stored as
//! their decimal text.

pub mod append;
pub mod get;
pub mod getdel;
pub mod getex;
pub mod getrange;
pub mod incr;
pub mod incrbyfloat;
pub mod lcs;
pub mod mget;
pub mod mset;
pub mod set;
pub mod setrange;
pub mod strlen;
