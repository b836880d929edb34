//! argon2id password hashing on a fixed set of worker threads, each reusing its own memory.
//!
//! Each hash needs ~19 MiB. Run on tokio's blocking pool, every short-lived thread allocated that afresh and
//! the allocator kept it per thread: 450 MiB after 1,500 sign-ins. Here `max_concurrent` threads (one per core
//! by default) live as long as the process and hash into a block buffer they keep, so memory is bounded by
//! workers × cost, whatever the load. Jobs wait in one first-in-first-out queue; a job that waited longer than
//! `max_queue_wait_ms` (or finds the queue full) is answered [`HashError::Busy`] — the page says 503 and
//! `Retry-After` — instead of every sign-in slowing to a crawl. Unknown accounts are verified against a dummy
//! hash so that a failed sign-in costs the same whether or not the account exists.

use argon2::password_hash::phc::{Output, ParamsString, PasswordHash, Salt};
use argon2::{Algorithm, Argon2, Block, Params, Version};
use serde::Deserialize;
use std::sync::mpsc::{Receiver, SyncSender, TrySendError};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use subtle::ConstantTimeEq;
use tokio::sync::oneshot;

/// argon2id cost parameters; stored in each PHC string, so they can be raised later.
#[derive(Debug, Clone, Copy, Deserialize, serde::Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct Argon2Settings {
    pub memory_kib: u32,
    pub iterations: u32,
    pub parallelism: u32,
    /// Worker threads that hash (0: one per CPU core); memory is bounded by this × `memory_kib`.
    pub max_concurrent: usize,
    /// A hash that waited longer than this in the queue is refused (503) instead of run.
    pub max_queue_wait_ms: u32,
    /// Hashes that may wait at once; more are refused straight away.
    pub max_queued: usize,
}

impl Default for Argon2Settings {
    /// OWASP's first recommended argon2id configuration: m = 19 MiB, t = 2, p = 1.
    fn default() -> Self {
        Self {
            memory_kib: 19 * 1024,
            iterations: 2,
            parallelism: 1,
            max_concurrent: 0,
            max_queue_wait_ms: 2000,
            max_queued: 512,
        }
    }
}

impl Argon2Settings {
    pub fn validate(&self) -> Result<(), String> {
        Params::new(self.memory_kib, self.iterations, self.parallelism, None)
            .map(|_| ())
            .map_err(|e| format!("argon2 parameters: {e}"))?;
        if self.max_concurrent > 256 {
            return Err("argon2.max_concurrent must be at most 256 (0: one per CPU core)".into());
        }
        if self.max_queue_wait_ms == 0 || self.max_queued == 0 {
            return Err("argon2.max_queue_wait_ms and argon2.max_queued must be at least 1".into());
        }
        Ok(())
    }
}

#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum HashError {
    /// Too many hashes waiting: try again shortly.
    #[error("too many sign-ins at once; try again in a moment")]
    Busy,
    #[error("password hashing failed: {0}")]
    Failed(String),
}

enum Work {
    Hash(String),
    /// Verify against a PHC string; `None` verifies the dummy hash and answers false.
    Verify(String, Option<String>),
}

enum Done {
    Hashed(String),
    Verified(bool),
}

struct Job {
    work: Work,
    queued_at: Instant,
    reply: oneshot::Sender<Result<Done, HashError>>,
}

#[derive(Clone)]
pub struct PasswordHasher {
    params: Params,
    queue: SyncSender<Job>,
    dummy_hash: Arc<str>,
}

impl PasswordHasher {
    pub fn new(settings: Argon2Settings) -> Result<Self, HashError> {
        let params = Params::new(settings.memory_kib, settings.iterations, settings.parallelism, None)
            .map_err(|e| HashError::Failed(e.to_string()))?;
        let workers = if settings.max_concurrent == 0 {
            std::thread::available_parallelism().map(|n| n.get()).unwrap_or(2)
        } else {
            settings.max_concurrent
        };
        let (queue, jobs) = std::sync::mpsc::sync_channel::<Job>(settings.max_queued);
        let jobs = Arc::new(Mutex::new(jobs));
        let max_wait = Duration::from_millis(u64::from(settings.max_queue_wait_ms));
        let dummy: Arc<str> = Arc::from(dummy_hash(&params)?);
        for n in 0..workers {
            let worker = Worker { params: params.clone(), memory: Vec::new(), dummy_hash: dummy.clone() };
            let jobs = jobs.clone();
            std::thread::Builder::new()
                .name(format!("argon2-{n}"))
                .spawn(move || worker.run(&jobs, max_wait))
                .map_err(|e| HashError::Failed(format!("cannot start a hashing thread: {e}")))?;
        }
        Ok(Self { params, queue, dummy_hash: dummy })
    }

    async fn submit(&self, work: Work) -> Result<Done, HashError> {
        let (reply, answer) = oneshot::channel();
        match self.queue.try_send(Job { work, queued_at: Instant::now(), reply }) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) => {
                metrics::counter!("lifeline_argon2_busy_total").increment(1);
                return Err(HashError::Busy);
            }
            Err(TrySendError::Disconnected(_)) => return Err(HashError::Failed("the hashing threads stopped".into())),
        }
        answer.await.map_err(|_| HashError::Failed("a hashing thread stopped".into()))?
    }

    pub async fn hash(&self, password: &str) -> Result<String, HashError> {
        match self.submit(Work::Hash(password.to_owned())).await? {
            Done::Hashed(hash) => Ok(hash),
            Done::Verified(_) => Err(HashError::Failed("unexpected answer".into())),
        }
    }

    /// True only when `stored` is a hash of `password`. With `None` (no account, or no password) a dummy
    /// hash is verified instead and the answer is false: the same work either way.
    pub async fn verify(&self, password: &str, stored: Option<&str>) -> Result<bool, HashError> {
        match self.submit(Work::Verify(password.to_owned(), stored.map(str::to_owned))).await? {
            Done::Verified(matched) => Ok(matched),
            Done::Hashed(_) => Err(HashError::Failed("unexpected answer".into())),
        }
    }

    /// Synchronous hashing for the CLI and tests that are not on a runtime.
    pub fn hash_now(&self, password: &str) -> Result<String, HashError> {
        Worker { params: self.params.clone(), memory: Vec::new(), dummy_hash: self.dummy_hash.clone() }.hash(password)
    }
}

/// The hash unknown accounts are verified against: the configured parameters, a random salt and a random
/// output. Verifying it recomputes argon2id with those parameters exactly as for a real hash (so the time is
/// the same), and no password matches a random output. Made without hashing, so that a start costs no
/// argon2 run and no 19 MiB: the workers' memory is taken at the first sign-in.
fn dummy_hash(params: &Params) -> Result<String, HashError> {
    let failed = |e: &dyn std::fmt::Display| HashError::Failed(e.to_string());
    let salt = argon2::password_hash::try_generate_salt().map_err(|e| failed(&e))?;
    let mut output = [0u8; Params::DEFAULT_OUTPUT_LEN];
    rand::Rng::fill_bytes(&mut super::tokens::os_rng(), &mut output);
    let phc = PasswordHash {
        algorithm: Algorithm::Argon2id.ident(),
        version: Some(Version::V0x13.into()),
        params: ParamsString::try_from(params).map_err(|e| failed(&e))?,
        salt: Some(Salt::new(&salt).map_err(|e| failed(&e))?),
        hash: Some(Output::new(&output).map_err(|e| failed(&e))?),
    };
    Ok(phc.to_string())
}

/// One hashing thread and the memory it keeps.
struct Worker {
    params: Params,
    memory: Vec<Block>,
    dummy_hash: Arc<str>,
}

impl Worker {
    fn run(mut self, jobs: &Mutex<Receiver<Job>>, max_wait: Duration) {
        loop {
            let job = match jobs.lock() {
                Ok(receiver) => match receiver.recv() {
                    Ok(job) => job,
                    Err(_) => return, // every sender is gone: the process is shutting down
                },
                Err(_) => return,
            };
            if job.reply.is_closed() {
                continue; // nobody waits for this answer any more (the attempt was given back)
            }
            let waited = job.queued_at.elapsed();
            metrics::histogram!("lifeline_argon2_queue_wait_seconds").record(waited.as_secs_f64());
            let result = if waited > max_wait {
                metrics::counter!("lifeline_argon2_busy_total").increment(1);
                Err(HashError::Busy)
            } else {
                match job.work {
                    Work::Hash(password) => self.hash(&password).map(Done::Hashed),
                    Work::Verify(password, stored) => Ok(Done::Verified(self.verify(&password, stored.as_deref()))),
                }
            };
            let _ = job.reply.send(result); // the asker may have gone away (client disconnected)
        }
    }

    /// Grow (never shrink) the kept memory to what `params` needs.
    fn memory_for(&mut self, params: &Params) -> &mut [Block] {
        let blocks = params.block_count();
        if self.memory.len() < blocks {
            self.memory.resize(blocks, Block::default());
        }
        &mut self.memory[..blocks]
    }

    fn hash(&mut self, password: &str) -> Result<String, HashError> {
        let salt = argon2::password_hash::try_generate_salt().map_err(|e| HashError::Failed(e.to_string()))?;
        let salt = Salt::new(&salt).map_err(|e| HashError::Failed(e.to_string()))?;
        let mut out = [0u8; Params::DEFAULT_OUTPUT_LEN];
        let params = self.params.clone();
        let argon2 = Argon2::new(Algorithm::Argon2id, Version::V0x13, params.clone());
        argon2
            .hash_password_into_with_memory(password.as_bytes(), &salt, &mut out, self.memory_for(&params))
            .map_err(|e| HashError::Failed(e.to_string()))?;
        let phc = PasswordHash {
            algorithm: Algorithm::Argon2id.ident(),
            version: Some(Version::V0x13.into()),
            params: ParamsString::try_from(&params).map_err(|e| HashError::Failed(e.to_string()))?,
            salt: Some(salt),
            hash: Some(Output::new(&out).map_err(|e| HashError::Failed(e.to_string()))?),
        };
        Ok(phc.to_string())
    }

    fn verify(&mut self, password: &str, stored: Option<&str>) -> bool {
        let real = stored.is_some();
        let dummy = self.dummy_hash.clone();
        let matched = self.verify_phc(password, stored.unwrap_or(&dummy)).unwrap_or(false);
        matched && real
    }

    /// Recompute a PHC string's hash with its own algorithm, version, parameters and salt, in the kept
    /// memory, and compare in constant time.
    fn verify_phc(&mut self, password: &str, phc: &str) -> Option<bool> {
        let parsed = PasswordHash::new(phc).ok()?;
        let algorithm = Algorithm::try_from(parsed.algorithm.as_str()).ok()?;
        let version = parsed.version.map(Version::try_from).transpose().ok()?.unwrap_or_default();
        let expected = parsed.hash?;
        let params = Params::try_from(&parsed).ok()?;
        let salt = parsed.salt?;
        let mut out = vec![0u8; expected.len()];
        Argon2::new(algorithm, version, params.clone())
            .hash_password_into_with_memory(password.as_bytes(), &salt, &mut out, self.memory_for(&params))
            .ok()?;
        Some(bool::from(out.as_slice().ct_eq(expected.as_bytes())))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use argon2::password_hash::PasswordVerifier as _;

    fn cheap(workers: usize) -> PasswordHasher {
        PasswordHasher::new(Argon2Settings {
            memory_kib: 1024,
            iterations: 1,
            parallelism: 1,
            max_concurrent: workers,
            ..Default::default()
        })
        .unwrap_or_else(|e| panic!("{e}"))
    }

    #[tokio::test]
    async fn hashes_are_phc_strings_that_verify_here_and_with_the_reference_verifier() {
        let hasher = cheap(2);
        let hash = hasher.hash("a long passphrase").await.unwrap_or_else(|e| panic!("{e}"));
        assert!(hash.starts_with("$argon2id$v=19$m=1024,t=1,p=1$"), "{hash}");
        assert_eq!(hasher.verify("a long passphrase", Some(&hash)).await, Ok(true));
        assert_eq!(hasher.verify("a long passphrasE", Some(&hash)).await, Ok(false));
        assert_eq!(hasher.verify("a long passphrase", None).await, Ok(false));
        assert_eq!(hasher.verify("x", Some("not a phc string")).await, Ok(false));
        // The argon2 crate's own verifier agrees, so hashes stay readable by anything that reads PHC strings.
        let parsed = PasswordHash::new(&hash).unwrap_or_else(|e| panic!("{e}"));
        assert!(Argon2::default().verify_password(b"a long passphrase", &parsed).is_ok());
    }

    #[tokio::test]
    async fn every_hash_has_its_own_random_salt_of_at_least_128_bits() {
        let hasher = cheap(2);
        let first = hasher.hash("one password").await.unwrap_or_else(|e| panic!("{e}"));
        let second = hasher.hash("one password").await.unwrap_or_else(|e| panic!("{e}"));
        assert_ne!(first, second, "two hashes of one password differ");
        for hash in [&first, &second] {
            // $argon2id$v=19$m=…,t=…,p=…$<salt>$<hash>, in unpadded base64: 22 symbols carry 16 bytes.
            let salt = hash.split('$').nth(4).unwrap_or_else(|| panic!("no salt in {hash}"));
            assert!(salt.len() >= 22, "a salt of {} symbols in {hash}", salt.len());
        }
    }

    #[tokio::test]
    async fn hashes_made_elsewhere_with_other_costs_still_verify() {
        // A hash with more memory than the workers started with: the kept buffer grows for it.
        let params = Params::new(4096, 2, 1, None).unwrap_or_else(|e| panic!("{e}"));
        let other = argon2::password_hash::PasswordHasher::hash_password(
            &Argon2::new(Algorithm::Argon2id, Version::V0x13, params),
            b"correct horse",
        )
        .unwrap_or_else(|e| panic!("{e}"))
        .to_string();
        let hasher = cheap(1);
        assert_eq!(hasher.verify("correct horse", Some(&other)).await, Ok(true));
        assert_eq!(hasher.verify("wrong horse", Some(&other)).await, Ok(false));
    }

    fn one_worker(max_queue_wait_ms: u32, max_queued: usize) -> PasswordHasher {
        PasswordHasher::new(Argon2Settings {
            memory_kib: 8 * 1024,
            iterations: 4,
            parallelism: 1,
            max_concurrent: 1,
            max_queue_wait_ms,
            max_queued,
        })
        .unwrap_or_else(|e| panic!("{e}"))
    }

    async fn verify_all_at_once(hasher: &PasswordHasher, n: usize) -> Vec<Result<bool, HashError>> {
        let tasks: Vec<_> = (0..n)
            .map(|_| {
                let hasher = hasher.clone();
                tokio::spawn(async move { hasher.verify("guess", None).await })
            })
            .collect();
        let mut results = Vec::new();
        for task in tasks {
            results.push(task.await.unwrap_or_else(|e| panic!("{e}")));
        }
        results
    }

    // No timing in these: a wait long enough that no scheduling delay reaches it, or a job that is sure to
    // wait behind another one's whole Argon2 run.
    #[tokio::test]
    async fn a_full_queue_is_busy_at_once_and_the_queued_ones_still_run() {
        let hasher = one_worker(60_000, 4);
        let results = verify_all_at_once(&hasher, 40).await;
        assert!(results.contains(&Err(HashError::Busy)), "{results:?}");
        assert!(results.iter().filter(|r| **r == Ok(false)).count() >= 4, "the queued ones run: {results:?}");
    }

    #[tokio::test]
    async fn a_job_that_waited_past_its_limit_is_busy_not_slow() {
        // Room for all eight, one worker: the later ones wait behind whole hashes, far past 1 ms.
        let hasher = one_worker(1, 8);
        let results = verify_all_at_once(&hasher, 8).await;
        assert!(results.contains(&Err(HashError::Busy)), "{results:?}");
    }

    #[tokio::test]
    async fn the_dummy_hash_has_the_configured_costs_and_no_password_matches_it() {
        let hasher = cheap(1);
        let dummy = PasswordHash::new(&hasher.dummy_hash).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(Params::try_from(&dummy).map(|p| (p.m_cost(), p.t_cost(), p.p_cost())), Ok((1024, 1, 1)));
        assert_eq!(dummy.algorithm, Algorithm::Argon2id.ident());
        // Unknown accounts answer false, whatever the password, and two starts have different dummies.
        assert_eq!(hasher.verify("", None).await, Ok(false));
        assert_eq!(hasher.verify("lifeline dummy password for unknown accounts", None).await, Ok(false));
        assert_ne!(hasher.dummy_hash, cheap(1).dummy_hash);
    }

    #[test]
    fn default_parameters_are_owasps() {
        let s = Argon2Settings::default();
        assert_eq!((s.memory_kib, s.iterations, s.parallelism), (19456, 2, 1));
    }
}
