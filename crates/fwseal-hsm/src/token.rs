//! Loading PKCS#11 modules, finding tokens by label, logging in, and a pool of sessions.

use crate::{HsmError, Pin, PinSource};
use cryptoki::context::{CInitializeArgs, CInitializeFlags, Pkcs11};
use cryptoki::error::{Error as CkError, RvError};
use cryptoki::session::{Session, SessionState, UserType};
use cryptoki::slot::Slot;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant};

/// How to reach one token.
#[derive(Clone, Debug)]
pub struct TokenConfig {
    /// Path of the PKCS#11 module (`.so`).
    pub module: PathBuf,
    /// CKA token label (the slot id is never used: it can change, e.g. after SoftHSM init).
    pub label: String,
    /// Where the user PIN comes from.
    pub user_pin: PinSource,
    /// How many idle sessions to keep open (at least 1; more are opened on demand).
    pub pool_size: usize,
    /// Most token operations in flight at once (0 = no limit). A caller waits up to
    /// `session_wait` for one to finish, then fails with [`HsmError::Busy`].
    pub max_sessions: usize,
    /// How long a caller waits for a session when `max_sessions` are in use.
    pub session_wait: Duration,
    /// How often an operation that failed with a session-level error is retried on a fresh
    /// session (the token found again by label and logged in again).
    pub retries: u32,
}

impl TokenConfig {
    /// Defaults for the limits: at most 32 operations at once, a 10 s wait, one retry.
    pub const DEFAULT_MAX_SESSIONS: usize = 32;
    /// Default of [`TokenConfig::session_wait`].
    pub const DEFAULT_SESSION_WAIT: Duration = Duration::from_secs(10);
    /// Default of [`TokenConfig::retries`].
    pub const DEFAULT_RETRIES: u32 = 1;
}

/// Modules are loaded and `C_Initialize`d once per process and never finalised: PKCS#11
/// initialisation is process-global (a second `C_Initialize` of the same library fails, and
/// `C_Finalize` would pull the rug from every other user of the module).
static MODULES: OnceLock<Mutex<HashMap<PathBuf, Pkcs11>>> = OnceLock::new();

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding one of our locks leaves plain data behind; keep going.
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Whether `path` has already been loaded in this process.
pub(crate) fn module_loaded(path: &Path) -> bool {
    let key = path.canonicalize().unwrap_or_else(|_| path.to_path_buf());
    MODULES
        .get()
        .map(|m| lock(m).contains_key(&key))
        .unwrap_or(false)
}

/// Load and initialise a module (once per process; later calls return the same context).
pub fn load_module(path: &Path) -> Result<Pkcs11, HsmError> {
    if !path.is_file() {
        return Err(HsmError::ModuleMissing {
            path: path.to_path_buf(),
        });
    }
    let key = path.canonicalize().unwrap_or_else(|_| path.to_path_buf());
    let mut map = lock(MODULES.get_or_init(Default::default));
    if let Some(p) = map.get(&key) {
        return Ok(p.clone());
    }
    let load_err = |detail: String| HsmError::ModuleLoad {
        path: path.to_path_buf(),
        detail,
    };
    let p = Pkcs11::new(&key).map_err(|e| load_err(e.to_string()))?;
    match p.initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK)) {
        Ok(()) | Err(CkError::Pkcs11(RvError::CryptokiAlreadyInitialized, _)) => {}
        Err(e) => return Err(load_err(format!("C_Initialize: {e}"))),
    }
    map.insert(key, p.clone());
    Ok(p)
}

/// Slots holding an initialised token, with their labels.
pub(crate) fn token_labels(p: &Pkcs11) -> Result<Vec<(Slot, String)>, HsmError> {
    let mut out = Vec::new();
    for slot in p
        .get_slots_with_token()
        .map_err(HsmError::p11("C_GetSlotList"))?
    {
        if let Ok(info) = p.get_token_info(slot) {
            if info.token_initialized() {
                out.push((slot, info.label().trim_end().to_string()));
            }
        }
    }
    Ok(out)
}

/// The one slot whose token carries `label`.
pub(crate) fn find_slot(p: &Pkcs11, module: &Path, label: &str) -> Result<Slot, HsmError> {
    let all = token_labels(p)?;
    let hits: Vec<Slot> = all
        .iter()
        .filter(|(_, l)| l == label)
        .map(|(s, _)| *s)
        .collect();
    match hits.as_slice() {
        [one] => Ok(*one),
        [] => Err(HsmError::TokenMissing {
            label: label.to_string(),
            module: module.to_path_buf(),
            available: all.into_iter().map(|(_, l)| l).collect(),
        }),
        _ => Err(HsmError::Config(format!(
            "{} tokens are labelled {label:?}; labels must be unique",
            hits.len()
        ))),
    }
}

/// Result of [`Token::health`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Health {
    /// The slot still holds the token.
    pub token_present: bool,
    /// A session is in a user-authenticated state (or every allowed session is in use: see
    /// `busy`).
    pub logged_in: bool,
    /// All `max_sessions` were in use, so no session was checked; the token counts as
    /// healthy (operations are running on it) and `detail` says it is busy.
    pub busy: bool,
    /// What failed, if anything.
    pub detail: Option<String>,
}

impl Health {
    /// Both checks passed.
    pub fn ok(&self) -> bool {
        self.token_present && self.logged_in
    }
}

struct Inner {
    module: PathBuf,
    label: String,
    pkcs11: Pkcs11,
    slot: Mutex<Slot>,
    pin: Pin,
    pool: Mutex<Pool>,
    freed: Condvar,
    pool_size: usize,
    max_sessions: usize,
    session_wait: Duration,
    retries: u32,
}

/// Idle sessions, and how many operations hold one.
#[derive(Default)]
struct Pool {
    idle: Vec<Session>,
    busy: usize,
}

/// One operation's claim on the token (released on drop).
struct Lease<'a> {
    token: &'a Token,
}

impl Drop for Lease<'_> {
    fn drop(&mut self) {
        let inner = &self.token.inner;
        let mut p = lock(&inner.pool);
        p.busy = p.busy.saturating_sub(1);
        drop(p);
        inner.freed.notify_one();
    }
}

/// An open, logged-in token with a pool of sessions. Cheap to clone; `Send + Sync`.
///
/// A cryptoki `Session` is `Send` but not `Sync`, so each operation takes a session out of the
/// pool (or opens a new one when all are busy), uses it on the calling thread, and puts it back
/// (keeping at most `pool_size` idle). Login state is per token and application in PKCS#11, so
/// sessions opened after login are already authenticated; the pool always keeps at least one
/// session open so the login is not lost when the last session closes. A session that fails with
/// a session-level error (handle invalid, closed, not logged in, device error/removed) is dropped,
/// the token is found again by label, logged in again, and the operation is retried once.
#[derive(Clone)]
pub struct Token {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Token")
            .field("module", &self.inner.module)
            .field("label", &self.inner.label)
            .finish_non_exhaustive()
    }
}

impl Token {
    /// Load the module, find the token by label, read the PIN and log in. Errors name which of
    /// module ([`HsmError::ModuleMissing`]/[`HsmError::ModuleLoad`]), token
    /// ([`HsmError::TokenMissing`]) or PIN ([`HsmError::WrongPin`], [`HsmError::PinLocked`],
    /// [`HsmError::PinUnavailable`]) is wrong.
    pub fn open(cfg: &TokenConfig) -> Result<Token, HsmError> {
        let pkcs11 = load_module(&cfg.module)?;
        let slot = find_slot(&pkcs11, &cfg.module, &cfg.label)?;
        let pin = cfg.user_pin.read()?;
        let t = Token {
            inner: Arc::new(Inner {
                module: cfg.module.clone(),
                label: cfg.label.clone(),
                pkcs11,
                slot: Mutex::new(slot),
                pin,
                pool: Mutex::new(Pool::default()),
                freed: Condvar::new(),
                pool_size: cfg.pool_size.max(1),
                max_sessions: cfg.max_sessions,
                session_wait: cfg.session_wait,
                retries: cfg.retries,
            }),
        };
        let s = t.open_session()?;
        lock(&t.inner.pool).idle.push(s);
        Ok(t)
    }

    /// The token label.
    pub fn label(&self) -> &str {
        &self.inner.label
    }

    /// The module path.
    pub fn module(&self) -> &Path {
        &self.inner.module
    }

    /// The current slot id (informational; it may change).
    pub fn slot(&self) -> Slot {
        *lock(&self.inner.slot)
    }

    fn open_session(&self) -> Result<Session, HsmError> {
        let slot = self.slot();
        let s = self
            .inner
            .pkcs11
            .open_rw_session(slot)
            .map_err(HsmError::p11("C_OpenSession"))?;
        self.login(&s)?;
        Ok(s)
    }

    fn login(&self, s: &Session) -> Result<(), HsmError> {
        match s.login(UserType::User, Some(&self.inner.pin.auth())) {
            Ok(()) | Err(CkError::Pkcs11(RvError::UserAlreadyLoggedIn, _)) => Ok(()),
            Err(CkError::Pkcs11(RvError::PinIncorrect | RvError::PinLenRange, _)) => {
                Err(HsmError::WrongPin {
                    label: self.inner.label.clone(),
                })
            }
            Err(CkError::Pkcs11(RvError::PinLocked, _)) => Err(HsmError::PinLocked {
                label: self.inner.label.clone(),
            }),
            Err(e) => Err(HsmError::Pkcs11 {
                op: "C_Login",
                source: e,
            }),
        }
    }

    /// Claim one of `max_sessions` (waiting up to `session_wait`) and a session: an idle one,
    /// or a new one.
    fn take(&self) -> Result<(Lease<'_>, Session), HsmError> {
        self.take_within(self.inner.session_wait)
    }

    /// [`Token::take`], waiting at most `wait` for a free place (zero: try once).
    fn take_within(&self, wait: Duration) -> Result<(Lease<'_>, Session), HsmError> {
        let inner = &self.inner;
        let mut p = lock(&inner.pool);
        if inner.max_sessions > 0 && p.busy >= inner.max_sessions {
            let deadline = Instant::now() + wait;
            while p.busy >= inner.max_sessions {
                let left = deadline.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    return Err(HsmError::Busy {
                        label: inner.label.clone(),
                        sessions: inner.max_sessions,
                        waited: wait,
                    });
                }
                p = inner
                    .freed
                    .wait_timeout(p, left)
                    .unwrap_or_else(|e| e.into_inner())
                    .0;
            }
        }
        p.busy += 1;
        let idle = p.idle.pop();
        drop(p);
        let lease = Lease { token: self };
        let s = match idle {
            Some(s) => s,
            None => self.open_session()?,
        };
        Ok((lease, s))
    }

    fn give_back(&self, s: Session) {
        let mut p = lock(&self.inner.pool);
        if p.idle.len() < self.inner.pool_size {
            p.idle.push(s);
        }
    }

    /// Drop every idle session, find the token again by label and log in afresh.
    fn reset(&self) -> Result<Session, HsmError> {
        lock(&self.inner.pool).idle.clear();
        let slot = find_slot(&self.inner.pkcs11, &self.inner.module, &self.inner.label)?;
        *lock(&self.inner.slot) = slot;
        self.open_session()
    }

    /// Run `f` with a logged-in read/write session from the pool, retrying (`retries` times,
    /// default once) on a fresh session after a session-level error. With `max_sessions`
    /// operations already in flight, waits at most `session_wait` for one to end, then fails
    /// with [`HsmError::Busy`] instead of queueing without bound.
    ///
    /// This is the escape hatch for administration and tests; signing goes through
    /// [`crate::HsmSigner`], and key lookups through [`crate::keys`].
    pub fn with_session<R>(
        &self,
        f: impl FnMut(&Session) -> Result<R, HsmError>,
    ) -> Result<R, HsmError> {
        self.with_session_within(self.inner.session_wait, f)
    }

    /// [`Token::with_session`], waiting at most `wait` for a free place.
    fn with_session_within<R>(
        &self,
        wait: Duration,
        mut f: impl FnMut(&Session) -> Result<R, HsmError>,
    ) -> Result<R, HsmError> {
        let (_lease, mut s) = self.take_within(wait)?;
        let mut left = self.inner.retries;
        loop {
            match f(&s) {
                Ok(r) => {
                    self.give_back(s);
                    return Ok(r);
                }
                Err(e) if e.is_session_error() && left > 0 => {
                    left -= 1;
                    drop(s);
                    s = self.reset()?;
                }
                Err(e) if e.is_session_error() => return Err(e),
                Err(e) => {
                    self.give_back(s);
                    return Err(e);
                }
            }
        }
    }

    /// Log in again if the application lost its login (e.g. another handle called logout).
    pub fn ensure_logged_in(&self) -> Result<(), HsmError> {
        let (_lease, s) = self.take()?;
        let r = self.login(&s);
        if r.is_ok() {
            self.give_back(s);
        }
        r
    }

    /// Cheap liveness check: the slot still holds the token and a pooled session is logged in.
    /// It never waits for a session: with all `max_sessions` in use (operations are running),
    /// the token counts as healthy and [`Health::busy`] says so.
    pub fn health(&self) -> Health {
        let present = match self.inner.pkcs11.get_slot_info(self.slot()) {
            Ok(i) => i.token_present(),
            Err(e) => {
                return Health {
                    token_present: false,
                    logged_in: false,
                    busy: false,
                    detail: Some(format!("C_GetSlotInfo: {e}")),
                }
            }
        };
        if !present {
            return Health {
                token_present: false,
                logged_in: false,
                busy: false,
                detail: Some("token not present".into()),
            };
        }
        let state = self.with_session_within(Duration::ZERO, |s| {
            s.get_session_info()
                .map(|i| i.session_state())
                .map_err(HsmError::p11("C_GetSessionInfo"))
        });
        let health = |logged_in, busy, detail| Health {
            token_present: true,
            logged_in,
            busy,
            detail,
        };
        match state {
            Ok(SessionState::RwUser | SessionState::RoUser) => health(true, false, None),
            Ok(other) => health(false, false, Some(format!("session state {other:?}"))),
            // Every allowed session is in use by a running operation: the token works.
            Err(e @ HsmError::Busy { .. }) => health(true, true, Some(e.to_string())),
            Err(e) => health(false, false, Some(e.to_string())),
        }
    }

    /// Whether the token implements PKCS#11 3.2 ML-DSA key generation (native PQ mode).
    /// Whether the token generates and uses `alg` keys natively (PKCS#11 3.2: its mechanism
    /// list has the key-pair mechanism and the signature mechanism of the algorithm's family).
    pub fn supports_native(&self, alg: fwseal_crypto::SigAlg) -> bool {
        use cryptoki::mechanism::MechanismType as M;
        let Some((gen, _, _)) = crate::keys::native_params(alg) else {
            return false;
        };
        let sign = if gen == M::ML_DSA_KEY_PAIR_GEN {
            M::ML_DSA
        } else {
            M::SLH_DSA
        };
        self.has_mechanism(gen) && self.has_mechanism(sign)
    }

    /// Whether the token implements `m`. Asks about that one mechanism
    /// (`C_GetMechanismInfo`) rather than reading the whole mechanism list, whose conversion
    /// in cryptoki logs an `ERROR` for every vendor or unknown mechanism the token lists
    /// (about 30 for SoftHSM2) although nothing is wrong.
    fn has_mechanism(&self, m: cryptoki::mechanism::MechanismType) -> bool {
        self.inner.pkcs11.get_mechanism_info(self.slot(), m).is_ok()
    }

    /// Whether the token has `CKM_ML_DSA_KEY_PAIR_GEN` (PKCS#11 3.2).
    pub fn supports_native_ml_dsa(&self) -> bool {
        self.has_mechanism(cryptoki::mechanism::MechanismType::ML_DSA_KEY_PAIR_GEN)
    }

    /// Log out and close every idle session (sessions in use close when returned).
    pub fn logout(&self) {
        let mut p = lock(&self.inner.pool);
        if let Some(s) = p.idle.first() {
            let _ = s.logout();
        }
        p.idle.clear();
    }
}
