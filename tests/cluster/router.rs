//! A minimal cluster-aware client for the sharding tests: sends each command to the node
//! it last learned owns the slot, follows MOVED, and retries TRYAGAIN / CLUSTERDOWN /
//! connection loss until a deadline, as Redis Cluster clients do.

use std::collections::HashMap;
use std::time::Duration;

use redis::aio::MultiplexedConnection;
use redis::{Cmd, FromRedisValue, RedisError, RedisResult};
use tokio::sync::Mutex;

pub struct Router {
    /// Known entry points (data nodes); MOVED teaches the rest.
    seeds: Vec<String>,
    conns: Mutex<HashMap<String, MultiplexedConnection>>,
    /// slot → address last seen to own it.
    owners: Mutex<HashMap<u16, String>>,
    pub retry_for: Duration,
}

/// What a failed attempt means.
pub enum Failure {
    /// Definitely not applied (a redirect or refusal before running).
    Refused(RedisError),
    /// May or may not have been applied.
    Unknown(RedisError),
}

impl Router {
    pub fn new(seeds: Vec<String>) -> Router {
        Router {
            seeds,
            conns: Mutex::default(),
            owners: Mutex::default(),
            retry_for: Duration::from_secs(30),
        }
    }

    async fn conn(&self, addr: &str) -> RedisResult<MultiplexedConnection> {
        if let Some(c) = self.conns.lock().await.get(addr) {
            return Ok(c.clone());
        }
        let client = redis::Client::open(format!("redis://{addr}/"))?;
        let mut c = client.get_multiplexed_async_connection().await?;
        c.set_response_timeout(Duration::from_secs(10));
        self.conns.lock().await.insert(addr.to_string(), c.clone());
        Ok(c)
    }

    /// One attempt at the slot's believed owner, following redirects (which are never
    /// applied) but not retrying anything that may have run.
    pub async fn try_once<T: FromRedisValue>(&self, slot: u16, cmd: &Cmd) -> Result<T, Failure> {
        let deadline = tokio::time::Instant::now() + self.retry_for;
        let mut n = 0usize;
        loop {
            let addr = match self.owners.lock().await.get(&slot) {
                Some(a) => a.clone(),
                None => self.seeds[(slot as usize + n) % self.seeds.len()].clone(),
            };
            n += 1;
            let mut con = match self.conn(&addr).await {
                Ok(c) => c,
                Err(e) => {
                    self.forget(slot, &addr).await;
                    if tokio::time::Instant::now() > deadline {
                        return Err(Failure::Refused(e));
                    }
                    tokio::time::sleep(Duration::from_millis(20)).await;
                    continue;
                }
            };
            match cmd.query_async::<T>(&mut con).await {
                Ok(v) => return Ok(v),
                Err(e) => {
                    let refused = matches!(e.code(), Some("MOVED" | "TRYAGAIN" | "CLUSTERDOWN"));
                    if let Some((to, _)) = e.redirect_node() {
                        self.owners.lock().await.insert(slot, to.to_string());
                    } else if e.is_io_error() || e.is_connection_dropped() || e.is_timeout() {
                        self.forget(slot, &addr).await;
                        return Err(Failure::Unknown(e));
                    }
                    if !refused {
                        return Err(Failure::Unknown(e));
                    }
                    if tokio::time::Instant::now() > deadline {
                        return Err(Failure::Refused(e));
                    }
                    if e.redirect_node().is_none() {
                        tokio::time::sleep(Duration::from_millis(20)).await;
                    }
                }
            }
        }
    }

    /// Retries everything until the deadline: for idempotent commands (reads, SET, ONCE).
    pub async fn query<T: FromRedisValue>(&self, slot: u16, cmd: &Cmd) -> RedisResult<T> {
        let deadline = tokio::time::Instant::now() + self.retry_for;
        loop {
            match self.try_once(slot, cmd).await {
                Ok(v) => return Ok(v),
                Err(Failure::Refused(e)) | Err(Failure::Unknown(e))
                    if tokio::time::Instant::now() > deadline =>
                {
                    return Err(e)
                }
                Err(Failure::Unknown(e)) if e.code() == Some("ERR") && !is_unknown_outcome(&e) => {
                    return Err(e)
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(20)).await,
            }
        }
    }

    async fn forget(&self, slot: u16, addr: &str) {
        self.conns.lock().await.remove(addr);
        let mut owners = self.owners.lock().await;
        if owners.get(&slot).map(String::as_str) == Some(addr) {
            owners.remove(&slot);
        }
    }
}

fn is_unknown_outcome(e: &RedisError) -> bool {
    e.to_string().contains("outcome unknown")
}
